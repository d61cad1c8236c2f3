//! Build script: records the git revision the binary is built from, for `opswatch --version`.
//!
//! Order: `OPSWATCH_GIT_REV` from the environment (a packager building from a tarball can say
//! what it is), else `git` when this source tree is itself a git checkout (a CI clone), else
//! "unknown" — a tarball without `.git` must still build.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OPSWATCH_GIT_REV");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let rev = std::env::var("OPSWATCH_GIT_REV")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| git_revision(Path::new(&manifest_dir)))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OPSWATCH_GIT_REV={}", rev.trim());
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn git_revision(dir: &Path) -> Option<String> {
    // Only this tree's own repository: a tarball unpacked inside some other checkout must not
    // report that checkout's revision.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = std::fs::canonicalize(&top).ok()? == std::fs::canonicalize(dir).ok()?;
    if !same {
        return None;
    }
    let rev = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit),
    // packed-refs (a gc). Paths come from git so that worktrees work too.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(rev)
}
