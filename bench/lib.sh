# shellcheck shell=bash
# Helpers shared by the bench scripts. Source it; it defines functions and a few globals only.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Every process a bench script starts in the background, so the EXIT trap can stop it.
BENCH_PIDS=()
# Temporary directory of this run (configs, data dirs, logs); removed by bench_cleanup.
BENCH_TMP=""
# Set by spawn: the pid of the process it just started.
SPAWNED_PID=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# A free TCP port on 127.0.0.1 (bound to port 0, read back, released).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# spawn LOGFILE CMD [ARG...]: starts CMD in the background with its output in LOGFILE and
# records its pid in BENCH_PIDS and SPAWNED_PID. Not to be called in a subshell.
spawn() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 </dev/null &
    SPAWNED_PID=$!
    BENCH_PIDS+=("$SPAWNED_PID")
}

# stop_pid PID: SIGTERM, up to 5 s for it to go, then SIGKILL. Only ever used on our own pids.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        stop_pid "$pid"
    done
    BENCH_PIDS=()
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        rm -rf -- "$BENCH_TMP"
    fi
}

# wait_http URL TIMEOUT_S: until URL answers 200, or fail.
wait_http() {
    local url=$1 timeout=$2 end
    end=$(($(date +%s) + timeout))
    until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
        (($(date +%s) < end)) || return 1
        sleep 0.05
    done
}

# wait_port PORT TIMEOUT_S: until 127.0.0.1:PORT accepts a TCP connection (no request sent).
wait_port() {
    local port=$1 timeout=$2 end
    end=$(($(date +%s) + timeout))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        (($(date +%s) < end)) || return 1
        sleep 0.05
    done
}

# ensure_tools CMD:PACKAGE...: installs, from Debian, the packages whose command is missing. A
# freshly installed package's own system service (any but wrk/time) is stopped and disabled:
# the bench runs its own instances in the foreground with their own config and data.
ensure_tools() {
    local -a missing=()
    local spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${missing[@]}" >&2; then
        apt-get update >&2
        apt-get install -y "${missing[@]}" >&2
    fi
    local pkg
    for pkg in "${missing[@]}"; do
        [[ $pkg == wrk || $pkg == time ]] && continue
        quiesce_service "$pkg"
    done
}

# ensure_peers: the spine's peers (wrk, monit, prometheus-alertmanager).
ensure_peers() {
    ensure_tools wrk:wrk monit:monit prometheus-alertmanager:prometheus-alertmanager
}

# quiesce_service NAME: stop and disable a system service a package install may have started.
quiesce_service() {
    local svc=$1
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$svc" >&2 || true
    else
        service "$svc" stop >&2 || true
        command -v systemctl >/dev/null && { systemctl disable "$svc" >&2 || true; }
        command -v update-rc.d >/dev/null && { update-rc.d "$svc" disable >&2 || true; }
    fi
    log "system service $svc stopped and disabled (the bench runs its own instance)"
}

# wrk_summary FILE: key=value lines (rps, p50_ms, p75_ms, p90_ms, p99_ms, requests, non2xx,
# socket_errors) from the output of `wrk --latency`.
wrk_summary() {
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v + 0
        }
        /Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "75%" { p75 = ms($2) }
        $1 == "90%" { p90 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /requests in/ { total = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errs = $0; sub(/.*Socket errors: */, "", errs) }
        END {
            printf "rps=%s\np50_ms=%.3f\np75_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\n", rps, p50, p75, p90, p99
            printf "requests=%s\nnon2xx=%d\nsocket_errors=%s\n", total, non2xx, (errs == "" ? "none" : errs)
        }' "$1"
}

# Figures of one run: every script declares `declare -A R=()` and sets RAW (the raw output
# file) before calling these.
# rec KEY VALUE: keep a figure and append it to the raw file.
rec() {
    R[$1]=$2
    printf '%s=%s\n' "$1" "$2" >>"$RAW"
}
# rec_kv: rec every key=value line read from stdin. Never at the end of a pipeline (that
# would run in a subshell and lose R); feed it with rec_cmd.
rec_kv() {
    local line
    while IFS= read -r line; do
        if [[ $line == *=* ]]; then rec "${line%%=*}" "${line#*=}"; fi
    done
}
# rec_cmd PREFIX CMD [ARG...]: run CMD (failing the script if it fails) and rec each key=value
# line of its output with PREFIX in front of the key.
rec_cmd() {
    local prefix=$1 out
    shift
    out=$("$@")
    rec_kv < <(sed "s/^/$prefix/" <<<"$out")
}
# raw_section TITLE FILE: append a file verbatim to the raw output.
raw_section() {
    {
        printf '\n----- %s -----\n' "$1"
        cat "$2"
        printf -- '----- end %s -----\n\n' "$1"
    } >>"$RAW"
}
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
bytes_to_mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# verdict le|ge VALUE TARGET
verdict() {
    awk -v op="$1" -v v="$2" -v t="$3" 'BEGIN {
        if (v == "" || v == "n/a") { print "n/a"; exit }
        ok = (op == "le") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
        print ok ? "PASS" : "MISS"
    }'
}

# rec_machine BIN: the machine and build lines every section's raw file starts with.
rec_machine() {
    local bin=$1
    rec date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    rec git_head "$(git -C "$ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" --no-optional-locks diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+uncommitted')"
    rec nproc "$(nproc)"
    rec mem_total_mib "$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
    rec kernel "$(uname -r)"
    rec cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    rec os "$(. /etc/os-release && echo "$PRETTY_NAME")"
    rec rustc "$(rustc --version)"
    rec opswatch_version "$("$bin" --version)"
    rec loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
    rec rustc_procs_start "$(pgrep -c -x rustc || true)"
    rec host_procs_start "$(count_procs)"
}

# count_procs: processes on the host (numeric entries of /proc).
count_procs() {
    local n=0 d
    for d in /proc/[0-9]*; do n=$((n + 1)); done
    echo "$n"
}

# metric_sum URL NAME_REGEX: sum of the values of the Prometheus samples whose name and
# labels match NAME_REGEX (awk regex on the part before the value), from URL.
metric_sum() {
    curl -fsS --max-time 5 "$1" | awk -v re="$2" '
        /^#/ { next }
        { v = $NF; $NF = ""; if ($0 ~ re) s += v }
        END { printf "%.6f\n", s + 0 }'
}

# log_problems FILE: number of WARN and ERROR lines in an opswatch log, and the first of each.
log_problems() {
    local f=$1
    echo "warn_lines=$(grep -c ' WARN ' "$f" || true)"
    # "check is DOWN" is the expected WARN of a benchmark that takes a target down on purpose.
    echo "unexpected_warn_lines=$(grep ' WARN ' "$f" | grep -vc 'check is DOWN' || true)"
    echo "error_lines=$(grep -c ' ERROR ' "$f" || true)"
    echo "first_warn=$(grep -m1 ' WARN ' "$f" | cut -c1-300 || true)"
    echo "first_error=$(grep -m1 ' ERROR ' "$f" | cut -c1-300 || true)"
}

# start_opswatch NAME DIR PORT [VAR=VALUE...]: runs $BIN on DIR/opswatch.toml (cwd DIR, log in
# $BENCH_TMP/NAME.log, the VAR=VALUE pairs added to its environment), waits for /health 200
# on PORT, and leaves its pid in SPAWNED_PID.
start_opswatch() {
    local name=$1 dir=$2 port=$3
    shift 3
    (cd "$dir" && exec env "$@" "$BIN" --config "$dir/opswatch.toml" serve) >"$BENCH_TMP/$name.log" 2>&1 </dev/null &
    SPAWNED_PID=$!
    BENCH_PIDS+=("$SPAWNED_PID")
    wait_http "http://127.0.0.1:$port/health" 60 || die "$name never answered 200 on /health: $(tail -5 "$BENCH_TMP/$name.log")"
}

# window PREFIX SECONDS PID:LABEL...: snaps the CPU of each process, sleeps, snaps again and
# recs PREFIX<label>_<key> for every key of `proccpu.py delta` (needs ROOT and BENCH_TMP).
window() {
    local prefix=$1 secs=$2 spec
    shift 2
    for spec in "$@"; do
        python3 "$ROOT/bench/proccpu.py" snap "${spec%%:*}" >"$BENCH_TMP/snap-$prefix${spec#*:}-a.json"
    done
    sleep "$secs"
    for spec in "$@"; do
        python3 "$ROOT/bench/proccpu.py" snap "${spec%%:*}" >"$BENCH_TMP/snap-$prefix${spec#*:}-b.json"
    done
    for spec in "$@"; do
        rec_cmd "$prefix${spec#*:}_" python3 "$ROOT/bench/proccpu.py" delta \
            "$BENCH_TMP/snap-$prefix${spec#*:}-a.json" "$BENCH_TMP/snap-$prefix${spec#*:}-b.json"
    done
}

# target_counts PREFIX URL: recs PREFIXcount_<port> from a running http_target.py.
target_counts() { rec_cmd "$1" python3 "$ROOT/bench/http_target.py" counts "$2"; }
