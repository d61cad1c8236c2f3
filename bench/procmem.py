#!/usr/bin/env python3
"""Memory of one running process, from /proc, as key=value lines (standard library only).

  procmem.py PID [PREFIX]

Prints PREFIX_vmrss_kib, _vmhwm_kib, _rssanon_kib, _rssfile_kib, _rssshmem_kib, _threads
(from /proc/PID/status), _thread_names (name x count, from /proc/PID/task/*/comm), _pss_kib, _pss_anon_kib, _pss_file_kib, _private_dirty_kib (from
/proc/PID/smaps_rollup), and the five mappings with the largest Rss from /proc/PID/smaps,
grouped by what backs them (file path, [heap], [stack], or [anon] for unnamed mappings,
which is where thread stacks and most allocator arenas live), as
PREFIX_top<i>=<kib>:<name>:<count of mappings>.
"""

import os
import sys


def status(pid: str) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(v: str) -> int:
    return int(v.split()[0]) if v else 0


def rollup(pid: str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    out[k] = kib(v.strip())
    except OSError:
        pass
    return out


def top_mappings(pid: str, n: int = 5) -> list[tuple[int, str, int]]:
    groups: dict[str, list[int]] = {}
    name = "[anon]"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split(None, 5)
                    name = parts[5].strip() if len(parts) > 5 and parts[5].strip() else "[anon]"
                    name = os.path.basename(name) if name.startswith("/") else name
                elif first == "Rss:":
                    g = groups.setdefault(name, [0, 0])
                    g[0] += kib(line.split(":", 1)[1].strip())
                    g[1] += 1
    except OSError:
        return []
    ranked = sorted(((v[0], k, v[1]) for k, v in groups.items()), reverse=True)
    return ranked[:n]


def thread_names(pid: str) -> str:
    counts: dict[str, int] = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            counts[name] = counts.get(name, 0) + 1
    except OSError:
        return ""
    return ",".join(f"{n}x{c}" for n, c in sorted(counts.items()))


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    pid = sys.argv[1]
    p = (sys.argv[2] + "_") if len(sys.argv) == 3 else ""
    st = status(pid)
    ru = rollup(pid)
    print(f"{p}vmrss_kib={kib(st.get('VmRSS', '0'))}")
    print(f"{p}vmhwm_kib={kib(st.get('VmHWM', '0'))}")
    print(f"{p}rssanon_kib={kib(st.get('RssAnon', '0'))}")
    print(f"{p}rssfile_kib={kib(st.get('RssFile', '0'))}")
    print(f"{p}rssshmem_kib={kib(st.get('RssShmem', '0'))}")
    print(f"{p}threads={st.get('Threads', '0')}")
    print(f"{p}thread_names={thread_names(pid)}")
    print(f"{p}pss_kib={ru.get('Pss', 0)}")
    print(f"{p}pss_anon_kib={ru.get('Pss_Anon', 0)}")
    print(f"{p}pss_file_kib={ru.get('Pss_File', 0)}")
    print(f"{p}private_dirty_kib={ru.get('Private_Dirty', 0)}")
    for i, (rss, name, count) in enumerate(top_mappings(pid), 1):
        print(f"{p}top{i}={rss}:{name}:{count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
