//! A real PM2 (`npm install -g pm2`) under a PM2_HOME of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Whether `pm2` is on PATH; when not, prints a notice (the test then skips), except in CI
/// (`CI=true`), where a missing pm2 fails the test.
pub fn pm2_available() -> bool {
    if opswatch::checks::pm2::pm2_on_path() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "pm2 is not on PATH in CI (npm install -g pm2)"
    );
    eprintln!("notice: pm2 is not on PATH; skipping (npm install -g pm2)");
    false
}

/// Runs `pm2 kill` for its PM2_HOME when dropped, if a daemon was started there. (`pm2 kill`
/// with no daemon would first spawn one, so it is only run when the daemon's files exist.)
pub struct KillDaemon(pub PathBuf);

impl Drop for KillDaemon {
    fn drop(&mut self) {
        if self.0.join("pm2.pid").exists() || self.0.join("rpc.sock").exists() {
            let _ = Command::new("pm2")
                .arg("kill")
                .env("PM2_HOME", &self.0)
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// Runs a pm2 command with `PM2_HOME=home`; panics (with its output) when it fails.
pub fn pm2(home: &Path, args: &[&str]) -> Output {
    let out = Command::new("pm2")
        .args(args)
        .env("PM2_HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("pm2 runs");
    assert!(
        out.status.success(),
        "pm2 {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
