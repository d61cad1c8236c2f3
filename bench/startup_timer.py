#!/usr/bin/env python3
"""Time from process spawn to the first HTTP 200 on a loopback port, N times.

Standard library only. Each run gets a fresh temporary directory and a fresh free loopback
port; `{dir}` and `{port}` are substituted in every argument of the command and in the
templates given with --file. The clock starts immediately before the process is spawned
(time.perf_counter_ns, then subprocess.Popen) and stops when a complete status line
"HTTP/1.x 200" has been read back. In between, a single-threaded client loops:

    connect to 127.0.0.1:{port}
      refused            -> sleep --interval ms, try again
      connected          -> send "GET {path} HTTP/1.1" (Connection: close), read the status line
        200              -> stop the clock
        anything else    -> sleep --interval ms, try again

So the figure includes exec, dynamic linking, config parsing, creating the store and binding
the port, plus at most one poll interval (default 1 ms) and the Python client's own overhead
(tens of microseconds per attempt). The process is then sent SIGTERM (SIGKILL after 5 s) and
reaped before the next run.

Usage:
  startup_timer.py --runs 20 --path /health [--file NAME=TEMPLATE ...] -- CMD ARG...

Prints one `run=<i> ms=<ms> attempts=<n> before_200=<statuses>` line per run (the statuses
other than 200 answered before the first 200, `-` if none; if there were any, a second
`run=<i> first_non200_body=...` line with the body of the first), then `median_ms=`, `max_ms=`,
`min_ms=`, `mean_ms=`, `runs_ms=` (comma separated) and `runs_with_non200_first=` (how many
runs answered something other than 200 before their first 200) lines.
"""

import argparse
import errno
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def try_get(port: int, path: str, timeout: float) -> tuple[int | None, bytes]:
    """(status, response) of GET path; status None if the port does not accept connections
    yet, 0 if it closed without a status line. The whole response is read only when the
    status is not 200 (it says why), so a 200 stops the clock as soon as its status line is in."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
                return None, b""
            raise
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        buf = b""
        while b"\r\n" not in buf and len(buf) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0].startswith(b"HTTP/"):
            code = int(line[1])
            if code != 200:
                while len(buf) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
            return code, buf
        return 0, buf  # connected but no status line (closed early): treat as "not yet"
    except (ConnectionResetError, BrokenPipeError):
        return 0, b""
    finally:
        s.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_run(args, i: int) -> tuple[float, int, list[int], str]:
    d = tempfile.mkdtemp(prefix=f"startup-{i}-", dir=args.tmp)
    port = free_port()
    sub = lambda s: s.replace("{dir}", d).replace("{port}", str(port))
    for spec in args.file:
        name, template = spec.split("=", 1)
        with open(template) as f:
            text = sub(f.read())
        target = os.path.join(d, name)
        with open(target, "w") as f:
            f.write(text)
        os.chmod(target, 0o600)  # monit refuses a control file readable by others
    argv = [sub(a) for a in args.cmd]
    log = open(os.path.join(d, "process.log"), "wb")
    attempts = 0
    early: list[int] = []  # statuses other than 200 seen before the first 200
    early_body = ""  # body of the first of them
    deadline = time.monotonic() + args.deadline
    interval = args.interval / 1000.0
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(argv, cwd=d, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        while True:
            attempts += 1
            code, response = try_get(port, args.path, timeout=args.deadline)
            if code == 200:
                t1 = time.perf_counter_ns()
                break
            if code:
                if not early:
                    early_body = response.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
                early.append(code)
            if proc.poll() is not None:
                raise RuntimeError(f"run {i}: process exited with {proc.returncode}; see {d}/process.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {i}: no 200 within {args.deadline}s (last status {code})")
            time.sleep(interval)
    finally:
        stop(proc)
        log.close()
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    return (t1 - t0) / 1e6, attempts, early, early_body


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--path", default="/health")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval in ms (default 1)")
    p.add_argument("--deadline", type=float, default=15.0, help="give up on a run after this many s")
    p.add_argument("--file", action="append", default=[], metavar="NAME=TEMPLATE")
    p.add_argument("--tmp", default=None, help="parent for the per-run directories")
    p.add_argument("--keep", action="store_true", help="keep the per-run directories")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd:
        p.error("no command given")
    if "/" in args.cmd[0]:  # each run's working directory is its own temp dir
        args.cmd[0] = os.path.abspath(args.cmd[0])
    times = []
    runs_with_early = 0
    for i in range(1, args.runs + 1):
        ms, attempts, early, early_body = one_run(args, i)
        times.append(ms)
        runs_with_early += bool(early)
        seen = ",".join(str(c) for c in early) or "-"
        print(f"run={i} ms={ms:.2f} attempts={attempts} before_200={seen}", flush=True)
        if early_body:
            print(f"run={i} first_non200_body={' '.join(early_body.split())[:300]}", flush=True)
    print(f"median_ms={statistics.median(times):.2f}")
    print(f"max_ms={max(times):.2f}")
    print(f"min_ms={min(times):.2f}")
    print(f"mean_ms={statistics.fmean(times):.2f}")
    print("runs_ms=" + ",".join(f"{t:.2f}" for t in times))
    print(f"runs_with_non200_first={runs_with_early}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"startup_timer: {e}", file=sys.stderr)
        sys.exit(1)
