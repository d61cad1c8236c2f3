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

# ensure_peers: installs wrk, monit and prometheus-alertmanager from Debian when missing. A
# freshly installed package's own system service is stopped and disabled: the bench runs
# its own instances in the foreground with their own config and data directories.
ensure_peers() {
    local -a missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v monit >/dev/null || missing+=(monit)
    command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
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
        [[ $pkg == wrk ]] && continue
        quiesce_service "$pkg"
    done
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
