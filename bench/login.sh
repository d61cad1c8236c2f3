#!/usr/bin/env bash
# Login figures (issue 15): the cost of POST /login (argon2id check on the blocking pool) and
# /health latency while 20 logins per second arrive. Release binary, SQLite store.
# Usage: bash bench/login.sh [N] [RATE] [SECONDS]      (defaults 20, 20, 20)
# Output: bench/out/login-<date>.txt
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
BENCH_TMP=$(mktemp -d /tmp/opswatch-login.XXXXXX)
trap bench_cleanup EXIT

cargo build --release --locked --bin opswatch
BIN=target/release/opswatch
PASSWORD="bench-password-$$"
HASH=$(printf '%s\n' "$PASSWORD" | "$BIN" user hash)
PORT=$(free_port)
cat >"$BENCH_TMP/opswatch.toml" <<TOML
[storage]
url = "sqlite://$BENCH_TMP/data/opswatch.db"
[[auth.users]]
name = "admin"
password_hash = "$HASH"
TOML
spawn "$BENCH_TMP/opswatch.log" "$BIN" --config "$BENCH_TMP/opswatch.toml" serve --listen "127.0.0.1:$PORT"
wait_http "http://127.0.0.1:$PORT/health" 30
mkdir -p bench/out
OUT="bench/out/login-$(date +%Y%m%d-%H%M%S).txt"
{
    echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), tree $(git rev-parse --short HEAD)"
    python3 bench/login.py "http://127.0.0.1:$PORT" admin "$PASSWORD" "${1:-20}" "${2:-20}" "${3:-20}"
    echo "opswatch RSS after the burst: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$SPAWNED_PID/status") (peak $(awk '/VmHWM/ {print $2 " kB"}' "/proc/$SPAWNED_PID/status"))"
} | tee "$OUT"
