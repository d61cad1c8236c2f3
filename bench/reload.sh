#!/usr/bin/env bash
# Reload time with N HTTP checks (default 100), and whether a reload doubles or skips a probe.
#
#   bench/reload.sh [N] [RELOADS]
#
# Starts the release binary (or $OPSWATCH_BIN) with N checks (every 2 s) against bench/http_target.py, lets them
# run, then POSTs /api/v1/reload RELOADS times (default 20, 0.7 s apart) and keeps running
# 6 s more. Prints key=value lines:
#   reload_ms_median / reload_ms_max   time from the request to the new generation running,
#                                      as opswatch measures it (`took_ms` of the answer)
#   reload_wall_ms_median              the same, seen by curl (request and answer included)
#   intervals, interval_min_s, interval_max_s
#                                      gaps between consecutive probes of one check, from the
#                                      target's log, over the whole run
#   doubled (gap < 0.5 x every), missed (gap > 1.5 x every)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT

checks=${1:-100}
reloads=${2:-20}
every=2
cd "$BENCH_DIR/.."
bin=${OPSWATCH_BIN:-target/release/opswatch}
[[ -x $bin ]] || cargo build --release --locked
BENCH_TMP=$(mktemp -d)

target_port=$(free_port)
spawn "$BENCH_TMP/target.out" python3 bench/http_target.py serve "$target_port" --log "$BENCH_TMP/probes.log"
wait_port "$target_port" 10 || die "target did not start"

port=$(free_port)
config=$BENCH_TMP/opswatch.toml
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n[storage]\nurl = "sqlite://%s/data/o.db"\n[system]\nenabled = false\n[pm2]\nenabled = false\n' \
        "$port" "$BENCH_TMP"
    for i in $(seq 1 "$checks"); do
        printf '[[http]]\nname = "c%s"\nurl = "http://127.0.0.1:%s/c%s"\nevery = "%ss"\n' "$i" "$target_port" "$i" "$every"
    done
} >"$config"
spawn "$BENCH_TMP/opswatch.log" "$bin" --config "$config" serve
wait_http "http://127.0.0.1:$port/health" 30 || die "opswatch did not start"
sleep 5

: >"$BENCH_TMP/reloads"
for _ in $(seq 1 "$reloads"); do
    curl -fsS -X POST -w ' %{time_total}\n' "http://127.0.0.1:$port/api/v1/reload" >>"$BENCH_TMP/reloads"
    sleep 0.7
done
sleep 6

python3 - "$BENCH_TMP/reloads" "$BENCH_TMP/probes.log" "$every" <<'PY'
import json, statistics, sys
reloads, probes, every = sys.argv[1], sys.argv[2], float(sys.argv[3])
took, wall = [], []
for line in open(reloads):
    body, t = line.rsplit(" ", 1)
    took.append(json.loads(body)["reloaded"]["took_ms"])
    wall.append(float(t) * 1000)
by_path = {}
for line in open(probes):
    parts = line.split()
    if parts[0] == "req":
        by_path.setdefault(parts[5], []).append(float(parts[1]))
gaps = [b - a for ts in by_path.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]
print(f"checks={len(by_path)}")
print(f"reloads={len(took)}")
print(f"reload_ms_median={statistics.median(took):.2f}")
print(f"reload_ms_max={max(took):.2f}")
print(f"reload_wall_ms_median={statistics.median(wall):.2f}")
print(f"intervals={len(gaps)}")
print(f"interval_min_s={min(gaps):.3f}")
print(f"interval_max_s={max(gaps):.3f}")
print(f"doubled={sum(g < 0.5 * every for g in gaps)}")
print(f"missed={sum(g > 1.5 * every for g in gaps)}")
PY
