#!/usr/bin/env python3
"""A fake Telegram Bot API on loopback that logs when each message arrives (standard library only).

  fake_telegram.py serve PORT LOG
      Listens on 127.0.0.1:PORT. `POST /bot<token>/sendMessage` (JSON body) is answered like
      the real API: {"ok":true,"result":{"message_id":N,"date":...,"chat":{...},"text":...}};
      `getMe` answers a bot. Connections are kept alive (HTTP/1.1), as a client pool expects.
      For each sendMessage, once the whole body has been read, appends to LOG:
        "msg <recv_epoch_s> <kind> <message_id> <first line of the text, tags stripped>"
      where kind is DOWN, RESOLVED, or OTHER, read from the text ("is DOWN" / "is UP again").
      The token is never written to the log.

  fake_telegram.py count LOG
      Prints messages_total=n, messages_down=n, messages_resolved=n, messages_other=n.
"""

import itertools
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)
_lock = threading.Lock()
_tags = re.compile(r"<[^>]+>")


def kind_of(text: str) -> str:
    if "is UP again" in text:
        return "RESOLVED"
    if "is DOWN" in text:
        return "DOWN"
    return "OTHER"


def serve(port: int, log_path: str) -> None:
    log = open(log_path, "a", buffering=1)

    class Fake(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, obj: dict) -> None:
            payload = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            recv = time.time()
            method = self.path.rsplit("/", 1)[-1]
            if method != "sendMessage":
                self._reply({"ok": True, "result": True})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            text = str(body.get("text", ""))
            mid = next(_ids)
            first = _tags.sub("", text).strip().split("\n", 1)[0][:120]
            with _lock:
                log.write(f"msg {recv:.6f} {kind_of(text)} {mid} {first}\n")
            chat = body.get("chat_id", 1)
            self._reply(
                {
                    "ok": True,
                    "result": {
                        "message_id": mid,
                        "date": int(recv),
                        "chat": {"id": chat if isinstance(chat, int) else 1, "type": "private"},
                        "text": text,
                    },
                }
            )

        def do_GET(self) -> None:
            if self.path.endswith("/getMe"):
                self._reply(
                    {
                        "ok": True,
                        "result": {"id": 1, "is_bot": True, "first_name": "bench", "username": "bench_bot"},
                    }
                )
            else:
                self._reply({"ok": True, "result": True})

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), Fake)
    srv.serve_forever()


def count(log_path: str) -> None:
    kinds = {"DOWN": 0, "RESOLVED": 0, "OTHER": 0}
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split(None, 4)
                if len(parts) >= 3 and parts[0] == "msg":
                    kinds[parts[2]] = kinds.get(parts[2], 0) + 1
    except FileNotFoundError:
        pass
    print(f"messages_total={sum(kinds.values())}")
    for k, v in kinds.items():
        print(f"messages_{k.lower()}={v}")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "count":
        count(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
