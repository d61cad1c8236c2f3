#!/usr/bin/env bash
# Builds the Debian package: the release binary, then what the package carries that is
# generated from it (shell completions and the man page), then `cargo deb` around them.
# Prints the path of the .deb on the last line.
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). Extra arguments go to `cargo deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out="$target_dir/release/package"

cargo build --release --locked
bin="$target_dir/release/opswatch"
mkdir -p "$out"
"$bin" completions bash >"$out/opswatch.bash"
"$bin" completions zsh >"$out/_opswatch"
"$bin" completions fish >"$out/opswatch.fish"
"$bin" man | gzip -9n >"$out/opswatch.1.gz"

cargo deb --no-build --locked "$@" | tail -n 1
