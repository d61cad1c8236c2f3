#!/usr/bin/env python3
"""CPU time of a running process over a window, from /proc (standard library only).

  proccpu.py snap PID > A.json
      One JSON object: epoch time, utime/stime/cutime/cstime of /proc/PID/stat (clock ticks,
      sysconf CLK_TCK), VmRSS, and per thread (/proc/PID/task/TID) its name and the ns it has
      run (first field of schedstat).

  proccpu.py delta A.json B.json
      key=value lines for the window between two snaps of the same process:
        wall_s             B.t - A.t
        cpu_s              utime+stime of the process (all its threads, also threads that
                           ended in the window: the kernel folds them into the process totals)
        user_s, sys_s      the two parts
        children_cpu_s     cutime+cstime: CPU of children the process has waited for (e.g.
                           `pm2 jlist`), counted when they were reaped
        cpu_s_per_min      cpu_s / wall_s * 60
        cpu_pct_core       cpu_s / wall_s * 100 (percent of one core)
        total_cpu_s        cpu_s + children_cpu_s
        sched_threads_s    ns run by the threads alive at the end (from schedstat, ns
                           resolution; a thread born in the window counts from its birth;
                           threads that ended in the window are missing here but not in cpu_s)
        threads_start, threads_end, threads_ended, threads_born
        by_thread          "<name>:<ms>x<count>,..." of sched_threads_s grouped by thread name
        rss_kib_start, rss_kib_end
      /proc/PID/stat counts in ticks (1/CLK_TCK s, normally 10 ms), scaled by the kernel to
      the exact run time, so cpu_s is exact to one tick per snap.
"""

import json
import os
import sys
import time


def read_stat(path: str) -> list[str]:
    with open(path) as f:
        raw = f.read()
    # The name (field 2) is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def snap(pid: str) -> dict:
    t = time.time()
    fields = read_stat(f"/proc/{pid}/stat")
    # After the name: field 3 (state) is index 0, so field n is index n - 3.
    utime, stime, cutime, cstime = (int(fields[i - 3]) for i in (14, 15, 16, 17))
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        threads[tid] = [name, ns]
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {
        "pid": int(pid),
        "t": t,
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "utime": utime,
        "stime": stime,
        "cutime": cutime,
        "cstime": cstime,
        "rss_kib": rss,
        "threads": threads,
    }


def delta(a: dict, b: dict) -> None:
    if a["pid"] != b["pid"]:
        raise SystemExit("snaps of different processes")
    hz = a["clk_tck"]
    wall = b["t"] - a["t"]
    user = (b["utime"] - a["utime"]) / hz
    sys_ = (b["stime"] - a["stime"]) / hz
    cpu = user + sys_
    children = ((b["cutime"] + b["cstime"]) - (a["cutime"] + a["cstime"])) / hz
    sched = 0.0
    groups: dict[str, list[float]] = {}
    for tid, (name, ns) in b["threads"].items():
        before = a["threads"].get(tid, [name, 0])[1]
        d = (ns - before) / 1e9
        sched += d
        g = groups.setdefault(name, [0.0, 0])
        g[0] += d
        g[1] += 1
    ended = len(set(a["threads"]) - set(b["threads"]))
    born = len(set(b["threads"]) - set(a["threads"]))
    print(f"wall_s={wall:.3f}")
    print(f"cpu_s={cpu:.2f}")
    print(f"user_s={user:.2f}")
    print(f"sys_s={sys_:.2f}")
    print(f"children_cpu_s={children:.2f}")
    print(f"total_cpu_s={cpu + children:.2f}")
    print(f"cpu_s_per_min={cpu / wall * 60:.4f}")
    print(f"cpu_pct_core={cpu / wall * 100:.3f}")
    print(f"sched_threads_s={sched:.4f}")
    print(f"threads_start={len(a['threads'])}")
    print(f"threads_end={len(b['threads'])}")
    print(f"threads_ended={ended}")
    print(f"threads_born={born}")
    ranked = sorted(groups.items(), key=lambda kv: -kv[1][0])
    print("by_thread=" + ",".join(f"{n}:{v[0] * 1000:.1f}x{v[1]}" for n, v in ranked))
    print(f"rss_kib_start={a['rss_kib']}")
    print(f"rss_kib_end={b['rss_kib']}")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "snap":
        print(json.dumps(snap(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "delta":
        with open(sys.argv[2]) as f:
            a = json.load(f)
        with open(sys.argv[3]) as f:
            b = json.load(f)
        delta(a, b)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
