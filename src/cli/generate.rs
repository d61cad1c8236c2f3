//! Shell completions and the man page, generated from the clap definition so they never drift
//! from the real command line. Hidden commands: the packaging calls them (deploy/build-deb.sh)
//! and installs the output in the places Debian's shells and `man` look.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "opswatch", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes the roff man page `opswatch(1)` to stdout.
pub fn man() -> ExitCode {
    let mut page = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut page) {
        Ok(()) if std::io::stdout().write_all(&page).is_ok() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(1),
        Err(e) => {
            eprintln!("opswatch man: {e}");
            ExitCode::from(1)
        }
    }
}
