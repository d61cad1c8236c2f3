#!/usr/bin/env python3
"""A fast local HTTP target for the check benchmarks (standard library only).

  http_target.py serve PORT[,PORT...] [--log FILE]
      Answers every GET/HEAD on 127.0.0.1 at each PORT with the current status (200 "ok" at
      start), with Content-Length and `Connection: close`. Bench control (never counted nor
      logged as probes), on any of the ports:
        GET /_bench/set?status=500   every later probe gets 500 (or any code) until changed;
                                     answers "<epoch_s>" of the switch
        GET /_bench/counts           "<port> <probes answered>" per line, and "total <n>"
      With --log, appends one line per probe after the answer was written and flushed:
        "req <arrive_epoch_s> <answer_epoch_s> <status> <port> <path>"
      Probes are answered from a thread each (like a small web app); the listen backlog is
      1024 so a burst of connections is not dropped at the SYN queue.

  http_target.py counts URL
      Prints the counts of a running target as key=value lines (count_<port>=n, count_total=n).
"""

import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_lock = threading.Lock()
_state = {"status": 200}
_counts: dict[int, int] = {}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def make_handler(log):
    class Target(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, code: int, payload: bytes, body: bool) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True

        def _probe(self, body: bool) -> None:
            arrive = time.time()
            path = urlsplit(self.path)
            port = self.server.server_address[1]
            if path.path.startswith("/_bench/"):
                self._control(path, port)
                return
            with _lock:
                code = _state["status"]
            try:
                self._answer(code, b"ok\n" if code < 400 else b"failing on purpose\n", body)
            except OSError:
                return
            answered = time.time()
            with _lock:
                _counts[port] = _counts.get(port, 0) + 1
                if log is not None:
                    log.write(f"req {arrive:.6f} {answered:.6f} {code} {port} {path.path}\n")

        def _control(self, path, port: int) -> None:
            if path.path == "/_bench/set":
                code = int(parse_qs(path.query).get("status", ["200"])[0])
                with _lock:
                    _state["status"] = code
                    at = time.time()
                    if log is not None:
                        log.write(f"set {at:.6f} {code}\n")
                self._answer(200, f"{at:.6f}\n".encode(), True)
            elif path.path == "/_bench/counts":
                with _lock:
                    lines = [f"{p} {n}" for p, n in sorted(_counts.items())]
                    lines.append(f"total {sum(_counts.values())}")
                self._answer(200, ("\n".join(lines) + "\n").encode(), True)
            else:
                self._answer(404, b"unknown control\n", True)

        def do_GET(self) -> None:
            self._probe(True)

        def do_HEAD(self) -> None:
            self._probe(False)

        def log_message(self, *args) -> None:
            pass

    return Target


def serve(ports: list[int], log_path: str | None) -> None:
    log = open(log_path, "a", buffering=1) if log_path else None
    handler = make_handler(log)
    servers = [Server(("127.0.0.1", p), handler) for p in ports]
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()


def counts(url: str) -> None:
    with urllib.request.urlopen(url.rstrip("/") + "/_bench/counts", timeout=5) as r:
        for line in r.read().decode().splitlines():
            port, n = line.split()
            print(f"count_{port}={n}")


def main() -> int:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "serve":
        ports = [int(p) for p in args[1].split(",")]
        log = None
        if len(args) == 4 and args[2] == "--log":
            log = args[3]
        elif len(args) != 2:
            print(__doc__, file=sys.stderr)
            return 2
        serve(ports, log)
    elif len(args) == 2 and args[0] == "counts":
        counts(args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
