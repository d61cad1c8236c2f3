//! The command line: argument parsing and dispatch. Exit codes: 0 success, 1 a runtime
//! failure (or, for `check`, something critical), 2 a config or usage error.

use std::path::PathBuf;
use std::process::ExitCode;

mod connect_check;
mod db_report;
mod disputes;
mod generate;
mod report;
mod run_now;
mod user_hash;
mod vacuum;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::daemon::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "opswatch",
    version = VERSION,
    about = "Keeps watch over a small production server."
)]
pub struct Cli {
    /// Config file (TOML). Without one, opswatch watches this host with built-in defaults.
    #[arg(
        long,
        short,
        global = true,
        env = "OPSWATCH_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything: checks, alerts, reports, dashboard, API.
    Serve {
        /// Listen here instead of `server.listen` (port 0 picks a free port; the address is
        /// logged).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run every check once, print the results, exit 1 if anything is critical.
    Check,
    /// Alert channels.
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// Produce a report now.
    Report {
        #[arg(value_enum)]
        kind: ReportKind,
        /// Also send it (one message per channel) and raise its alerts.
        #[arg(long)]
        send: bool,
    },
    /// Disputes in the application's database.
    Disputes {
        #[command(subcommand)]
        command: DisputesCommand,
    },
    /// Maintenance of the application's database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Validate the config.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply the store's migrations and exit.
    Migrate,
    /// Dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a shell completion script (the package installs them).
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (the package installs it).
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test alert through every configured channel now.
    Test,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportKind {
    Daily,
    Weekly,
    Security,
    Db,
}

#[derive(Debug, Subcommand)]
pub enum DisputesCommand {
    /// Look for new disputes now.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Run VACUUM (ANALYZE) now, with a table-size report before and after.
    Vacuum,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and print it with defaults filled in and secrets redacted.
    Check {
        /// Also try each database, channel and endpoint once.
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Print the argon2id hash for an `[[auth.users]]` entry's `password_hash`: prompts twice on
    /// a terminal, or reads one line from standard input.
    Hash,
}

/// `opswatch --version`: the crate version and the git revision it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("OPSWATCH_GIT_REV"),
    ")"
);

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated from the command line alone: no config, no logging, no runtime.
    match cli.command {
        Command::Completions { shell } => return generate::completions(shell),
        Command::Man => return generate::man(),
        _ => {}
    }
    telemetry::init(cli.log_format);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("opswatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(cli.command, config, cli.config))
}

async fn run(command: Command, config: Config, config_path: Option<PathBuf>) -> ExitCode {
    match command {
        Command::Serve { listen } => {
            let config = with_listen(config, listen);
            if let Some(why) = crate::web::auth::exposure_problem(&config) {
                eprintln!("opswatch: {why}");
                return ExitCode::from(2);
            }
            let source = crate::daemon::serve::Source {
                path: config_path,
                listen_override: listen,
            };
            match crate::daemon::serve::run(config, Some(source)).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("opswatch: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Config {
            command: ConfigCommand::Check { connect },
        } => {
            print!("{}", config.to_redacted_toml());
            if connect {
                return crate::cli::connect_check::run(&config).await;
            }
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            match crate::store::Store::open_as(config.storage.url.expose(), &config.host).await {
                Ok(store) => {
                    store.close().await;
                    println!("migrations applied to {}", config.storage.url);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("opswatch: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check => crate::cli::run_now::check(&config).await,
        Command::Alert {
            command: AlertCommand::Test,
        } => crate::cli::run_now::alert_test(&config).await,
        Command::Report { kind, send } => match kind {
            ReportKind::Db => crate::cli::db_report::run(config, send).await,
            ReportKind::Daily => report::run(config, crate::reports::Kind::Daily, send).await,
            ReportKind::Weekly => report::run(config, crate::reports::Kind::Weekly, send).await,
            ReportKind::Security => report::run(config, crate::reports::Kind::Security, send).await,
        },
        Command::Disputes {
            command: DisputesCommand::Check,
        } => crate::cli::disputes::check(config).await,
        Command::Db {
            command: DbCommand::Vacuum,
        } => crate::cli::vacuum::run(config).await,
        Command::User {
            command: UserCommand::Hash,
        } => user_hash::run(),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
    }
}

fn with_listen(mut config: Config, listen: Option<std::net::SocketAddr>) -> Config {
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    config
}
