#!/usr/bin/env python3
"""Holds N connections open with partial requests while timing /health (standard library only).

  hold_conns.py PORT N SECONDS
      Opens N TCP connections to 127.0.0.1:PORT, each sending half a request head
      ("GET /health HTTP/1.1\\r\\nHost: x\\r\\n", never the final blank line), and keeps N
      open for SECONDS: a connection the server closes is opened again at once. Meanwhile a
      separate client sends a whole `GET /health` on a new connection every 50 ms and times
      it. That client is its own process: as a thread of this one it waited for the GIL
      while this loop reopened connections, and /health looked slower than it was (a p99
      of 44 ms in one run was mostly that wait). Prints key=value lines:
        held_target, opened_total, closed_by_server, open_at_end, health_requests,
        health_non200, health_errors, health_p50_ms, health_p99_ms, health_max_ms
"""

import http.client
import multiprocessing
import selectors
import socket
import sys
import time

HALF = b"GET /health HTTP/1.1\r\nHost: x\r\n"


def poll_health(port: int, stop, results) -> None:
    latencies: list[float] = []
    failures = {"non200": 0, "errors": 0}
    while not stop.is_set():
        started = time.perf_counter()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            c.close()
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status != 200:
                failures["non200"] += 1
        except OSError:
            failures["errors"] += 1
        time.sleep(0.05)
    results.put((latencies, failures))


def main() -> None:
    port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    sel = selectors.DefaultSelector()
    stats = {"opened": 0, "closed": 0}

    def open_one() -> None:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HALF)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        stats["opened"] += 1

    for _ in range(n):
        open_one()

    # "spawn", not fork: a forked poller would hold copies of the N sockets.
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    results = ctx.Queue()
    poller = ctx.Process(target=poll_health, args=(port, stop, results))
    poller.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                stats["closed"] += 1
                try:
                    open_one()
                except OSError:
                    pass
    stop.set()
    latencies, failures = results.get()
    poller.join()
    open_at_end = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    latencies.sort()

    def pct(p: float) -> str:
        if not latencies:
            return "n/a"
        return "%.2f" % latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    print(f"held_target={n}")
    print(f"opened_total={stats['opened']}")
    print(f"closed_by_server={stats['closed']}")
    print(f"open_at_end={open_at_end}")
    print(f"health_requests={len(latencies) + failures['errors']}")
    print(f"health_non200={failures['non200']}")
    print(f"health_errors={failures['errors']}")
    print(f"health_p50_ms={pct(0.50)}")
    print(f"health_p99_ms={pct(0.99)}")
    print(f"health_max_ms={'%.2f' % latencies[-1] if latencies else 'n/a'}")


if __name__ == "__main__":
    main()
