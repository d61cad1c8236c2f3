//! The command line: argument parsing and dispatch. Exit codes: 0 success, 1 a runtime
//! failure (or, for `check`, something critical), 2 a config or usage error, 3 a command that
//! is not built yet.

use std::path::PathBuf;
use std::process::ExitCode;

mod connect_check;
mod run_now;
mod user_hash;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::daemon::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "opswatch",
    version,
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

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve { listen } => {
            let config = with_listen(config, listen);
            if let Some(why) = crate::web::auth::exposure_problem(&config) {
                eprintln!("opswatch: {why}");
                return ExitCode::from(2);
            }
            match crate::daemon::serve::run(config).await {
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
        Command::Migrate => match crate::store::Store::open(config.storage.url.expose()).await {
            Ok(store) => {
                store.close().await;
                println!("migrations applied to {}", config.storage.url);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("opswatch: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Check => crate::cli::run_now::check(&config).await,
        Command::Alert {
            command: AlertCommand::Test,
        } => crate::cli::run_now::alert_test(&config).await,
        Command::Report { .. } => not_built("report"),
        Command::Disputes { .. } => not_built("disputes check"),
        Command::Db { .. } => not_built("db vacuum"),
        Command::User {
            command: UserCommand::Hash,
        } => user_hash::run(),
    }
}

fn with_listen(mut config: Config, listen: Option<std::net::SocketAddr>) -> Config {
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    config
}

fn not_built(what: &str) -> ExitCode {
    eprintln!("opswatch {what}: not built yet");
    ExitCode::from(3)
}
