//! Logging. Structured `tracing` events to stderr, filtered by `OPSWATCH_LOG` (or `RUST_LOG`),
//! as text or one JSON object per line. Secrets never reach a log line because the types that
//! hold them (`Secret`, `DbUrl`) redact themselves and channel errors are rewritten before
//! they are logged.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber; later calls (tests) are ignored.
pub fn init(format: LogFormat) {
    let filter = std::env::var("OPSWATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
