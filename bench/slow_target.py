#!/usr/bin/env python3
"""A deliberately slow HTTP target on loopback, and a reader for its log.

  slow_target.py serve PORT DELAY_S LOG
      Answers every GET/HEAD on 127.0.0.1:PORT with 200 "slow ok", but only after DELAY_S
      seconds. Each request runs in its own thread, so probes that arrive while another is
      hanging are held too. Appends "arrive <epoch_s> <id> <path>" when a request comes in
      and "answer <epoch_s> <id>" (or "gone <epoch_s> <id>" if the client hung up first) to
      LOG.

  slow_target.py inflight LOG T0 T1
      Reads LOG and prints, as key=value lines: how many requests arrived in total, how many
      were hanging (arrived, not yet answered) for the whole window [T0, T1] (epoch seconds),
      and how many overlapped it at all. Used by spine.sh to prove that an opswatch probe was
      really in flight during the load test, or to say plainly that none was.

Standard library only.
"""

import itertools
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)
_lock = threading.Lock()


def serve(port: int, delay: float, log_path: str) -> None:
    log = open(log_path, "a", buffering=1)

    def note(line: str) -> None:
        with _lock:
            log.write(line + "\n")

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _slow(self, body: bool) -> None:
            rid = next(_ids)
            note(f"arrive {time.time():.6f} {rid} {self.path}")
            time.sleep(delay)
            payload = b"slow ok\n"
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    self.wfile.write(payload)
                note(f"answer {time.time():.6f} {rid}")
            except OSError:
                note(f"gone {time.time():.6f} {rid}")
            self.close_connection = True

        def do_GET(self) -> None:
            self._slow(True)

        def do_HEAD(self) -> None:
            self._slow(False)

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), Slow)
    note(f"listening {time.time():.6f} 0 127.0.0.1:{port} delay={delay}")
    srv.serve_forever()


def inflight(log_path: str, t0: float, t1: float) -> None:
    arrived: dict[str, float] = {}
    ended: dict[str, float] = {}
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            kind, ts, rid = parts[0], float(parts[1]), parts[2]
            if kind == "arrive":
                arrived[rid] = ts
            elif kind in ("answer", "gone"):
                ended[rid] = ts
    inf = float("inf")
    spanning = sum(1 for r, a in arrived.items() if a <= t0 and ended.get(r, inf) >= t1)
    overlapping = sum(1 for r, a in arrived.items() if a <= t1 and ended.get(r, inf) >= t0)
    print(f"requests_total={len(arrived)}")
    print(f"inflight_whole_window={spanning}")
    print(f"inflight_overlapping={overlapping}")


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 5 and sys.argv[1] == "inflight":
        inflight(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
