#!/usr/bin/env bash
# Weekly log scan figures: 1 GiB of logs across a live file and its rotations (app.log,
# app.log.1, app.log.2.gz, app.log.3.gz: 256 MiB of content each) plus a second log; the first
# scan reads it all, then 1 MiB is appended and the second scan must read only that.
# Reports wall time, RSS growth during the first scan (goal: at most 16 MiB whatever the log
# size) and the bytes read the second time (goal: only what was appended).
# Usage: bash bench/logscan.sh [MIB_PER_FILE]      (default 256)
# Output: bench/out/logscan-<date>.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MIB=${1:-256}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/out
TMP=$(mktemp -d /tmp/opswatch-logscan.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

cargo build --release --example logscan_bench
mkdir -p "$TMP/logs" "$TMP/store"
# Log lines like an app's: mostly INFO with varying ids and durations, 1 in 50 an ERROR, 1 in
# 1000 a FATAL, so the normalised top lines have something to group.
python3 - "$TMP/logs" "$MIB" <<'PY'
import gzip, random, sys, os
out, mib = sys.argv[1], int(sys.argv[2])
random.seed(7)
def chunk(target):
    lines, size, n = [], 0, 0
    while size < target:
        n += 1
        r = random.random()
        ts = f"2026-11-{20 + n % 8:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}.{n % 1000:03d}Z"
        if r < 0.02:
            l = f"{ts} ERROR db timeout after {random.randint(1000, 9000)}ms on query {random.randint(1, 99999)}\n"
        elif r < 0.021:
            l = f"{ts} FATAL worker {random.randint(1, 16)} out of memory\n"
        else:
            l = f"{ts} INFO GET /api/items/{random.randint(1, 10**6)} 200 {random.randint(1, 300)}ms\n"
        lines.append(l)
        size += len(l)
        if len(lines) >= 10000:
            yield "".join(lines); lines = []
    if lines:
        yield "".join(lines)
target = mib * 1024 * 1024
for name in ["app.log.3.gz", "app.log.2.gz", "app.log.1", "app.log"]:
    path = os.path.join(out, name)
    f = gzip.open(path, "wt", compresslevel=1) if name.endswith(".gz") else open(path, "w")
    with f:
        for c in chunk(target):
            f.write(c)
with open(os.path.join(out, "worker.log"), "w") as f:
    for c in chunk(4 * 1024 * 1024):
        f.write(c)
PY
ls -l "$TMP/logs" >&2
{
    echo "# bench/logscan.sh $MIB MiB per file, $(date -u +%Y-%m-%dT%H:%M:%SZ), tree $(git rev-parse --short HEAD)"
    /usr/bin/time -v ./target/release/examples/logscan_bench "$TMP/logs" "$TMP/store" 1048576 2>"$TMP/time.txt"
    grep -E "Maximum resident|Elapsed" "$TMP/time.txt"
} | tee "bench/out/logscan-$STAMP.txt"
