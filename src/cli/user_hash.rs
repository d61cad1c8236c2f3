//! `opswatch user hash`: prints the argon2id PHC string for `[[auth.users]] password_hash`.
//! On a terminal it asks twice without echo; otherwise it reads one line from standard input
//! (`printf '%s\n' "$PW" | opswatch user hash`). Only the hash goes to standard output.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;

use rustix::termios::{self, LocalModes, OptionalActions};

pub fn run() -> ExitCode {
    let stdin = std::io::stdin();
    let password = if termios::isatty(&stdin) {
        match prompt_twice() {
            Ok(Some(p)) => p,
            Ok(None) => {
                eprintln!("opswatch user hash: the two passwords differ; nothing printed");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("opswatch user hash: cannot read the password: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        match read_line() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("opswatch user hash: cannot read standard input: {e}");
                return ExitCode::from(1);
            }
        }
    };
    if password.is_empty() {
        eprintln!("opswatch user hash: the password is empty");
        return ExitCode::from(2);
    }
    match crate::web::auth::password::hash_password(&password) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("opswatch user hash: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One line without its line ending.
fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks on the terminal with echo off; `None` when the two entries differ.
fn prompt_twice() -> std::io::Result<Option<String>> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    termios::tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let read = (|| -> std::io::Result<(String, String)> {
        eprint!("Password: ");
        std::io::stderr().flush()?;
        let first = read_line()?;
        eprint!("\nAgain: ");
        std::io::stderr().flush()?;
        let second = read_line()?;
        eprintln!();
        Ok((first, second))
    })();
    // Echo comes back whatever happened.
    termios::tcsetattr(&stdin, OptionalActions::Now, &saved)?;
    let (first, second) = read?;
    Ok((first == second).then_some(first))
}
