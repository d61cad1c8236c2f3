#!/usr/bin/env python3
"""Alert latency: from the deciding failed probe to the fake Telegram receiving the alert.

  alert_latency.py TARGET_URL TARGET_LOG TELEGRAM_LOG RUNS
      TARGET_URL is a running http_target.py (its /_bench/set switches the answer), TARGET_LOG
      its --log file, TELEGRAM_LOG the log of fake_telegram.py. The monitor under test probes
      the target with failures = 2. Each run:
        1. switch the target to 500 (time F);
        2. wait for a DOWN message received after F (at most 20 s);
        3. the deciding probe is the 2nd probe answered 500 after F; latency = receive time
           of the DOWN - the time the target finished writing that 500 answer;
        4. switch back to 200 (time U), wait for the RESOLVED, and take the same difference
           from the first 200 answered after U (reported too, not a target);
        5. pause 2 s.
      Prints key=value lines: down_ms (every run), down_median_ms, down_max_ms, down_min_ms,
      resolved_ms, resolved_median_ms, resolved_max_ms, flip_to_alert_median_ms (F to
      receipt: includes waiting for two probe intervals), failed_probes_before_alert (per
      run: how many 500 answers preceded the alert; 2 means it was decided by the 2nd),
      runs_ok, runs_timed_out.
All times are time.time() of processes on this host (the same clock). Standard library only.
"""

import statistics
import sys
import time
import urllib.request


def set_status(base: str, code: int) -> float:
    with urllib.request.urlopen(f"{base}/_bench/set?status={code}", timeout=5) as r:
        return float(r.read().decode().strip())


def probes(log_path: str) -> list[tuple[float, float, int]]:
    out = []
    with open(log_path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 4 and p[0] == "req":
                out.append((float(p[1]), float(p[2]), int(p[3])))
    return out


def messages(log_path: str, kind: str) -> list[float]:
    out = []
    try:
        with open(log_path) as f:
            for line in f:
                p = line.split(None, 4)
                if len(p) >= 3 and p[0] == "msg" and p[2] == kind:
                    out.append(float(p[1]))
    except FileNotFoundError:
        pass
    return out


def wait_message(log_path: str, kind: str, after: float, timeout: float) -> float | None:
    end = time.time() + timeout
    while time.time() < end:
        got = [t for t in messages(log_path, kind) if t > after]
        if got:
            return min(got)
        time.sleep(0.01)
    return None


def wait_probes(log_path: str, code: int, n: int, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if sum(1 for _, _, c in probes(log_path) if c == code) >= n:
            return True
        time.sleep(0.05)
    return False


def fmt(xs: list[float]) -> str:
    return ",".join(f"{x:.1f}" for x in xs)


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    base, tlog, glog, runs = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], int(sys.argv[4])
    if not wait_probes(tlog, 200, 3, 30):
        print("error=the monitor never probed the target three times", file=sys.stderr)
        return 1
    down, resolved, flip_to_alert, fails_before = [], [], [], []
    timed_out = 0
    for _ in range(runs):
        flip = set_status(base, 500)
        got = wait_message(glog, "DOWN", flip, 20)
        if got is None:
            timed_out += 1
            set_status(base, 200)
            time.sleep(5)
            continue
        failing = sorted(a for _, a, c in probes(tlog) if c >= 500 and a > flip)
        before = [a for a in failing if a <= got]
        fails_before.append(len(before))
        if len(failing) >= 2:
            down.append((got - failing[1]) * 1000)
        flip_to_alert.append((got - flip) * 1000)
        back = set_status(base, 200)
        ok_at = wait_message(glog, "RESOLVED", back, 20)
        if ok_at is not None:
            oks = sorted(a for _, a, c in probes(tlog) if c < 400 and a > back)
            if oks:
                resolved.append((ok_at - oks[0]) * 1000)
        else:
            timed_out += 1
        time.sleep(2)
    print(f"down_ms={fmt(down)}")
    if down:
        print(f"down_median_ms={statistics.median(down):.1f}")
        print(f"down_max_ms={max(down):.1f}")
        print(f"down_min_ms={min(down):.1f}")
    print(f"resolved_ms={fmt(resolved)}")
    if resolved:
        print(f"resolved_median_ms={statistics.median(resolved):.1f}")
        print(f"resolved_max_ms={max(resolved):.1f}")
    if flip_to_alert:
        print(f"flip_to_alert_median_ms={statistics.median(flip_to_alert):.1f}")
    print("failed_probes_before_alert=" + ",".join(str(n) for n in fails_before))
    print(f"runs_ok={len(down)}")
    print(f"runs_timed_out={timed_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
