#!/usr/bin/env python3
"""Transfer size of web pages as headless Chromium loads them (first visit, empty cache).

Drives chromedriver over its HTTP API (no Selenium needed), opens each URL, waits for the
network to settle, then sums the Performance API's `transferSize` (bytes on the wire, headers
included) and `decodedBodySize` over the document and every resource it loaded, and counts
requests and origins.

Usage: python3 bench/page_weight.py URL [URL ...]
Needs Debian's chromium and chromium-driver.
"""
import json
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


SCRIPT = """
const nav = performance.getEntriesByType('navigation');
const res = performance.getEntriesByType('resource');
const all = nav.concat(res);
const origins = new Set(all.map(e => new URL(e.name).origin));
return {requests: all.length,
        transfer: all.reduce((a, e) => a + (e.transferSize || 0), 0),
        decoded: all.reduce((a, e) => a + (e.decodedBodySize || 0), 0),
        origins: Array.from(origins)};
"""


def main():
    urls = sys.argv[1:]
    if not urls:
        sys.exit(__doc__)
    port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--disable-background-networking",
            "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        print("| page | requests | on the wire | decoded | origins |")
        print("|---|---|---|---|---|")
        for url in urls:
            call(base, "POST", s + "/url", {"url": url})
            # Single-page apps keep fetching after `load`: wait until the count settles.
            last, stable = -1, 0
            for _ in range(40):
                time.sleep(0.5)
                n = call(base, "POST", s + "/execute/sync", {
                    "script": "return performance.getEntriesByType('resource').length;",
                    "args": []})
                stable = stable + 1 if n == last else 0
                last = n
                if stable >= 4:
                    break
            r = call(base, "POST", s + "/execute/sync", {"script": SCRIPT, "args": []})
            print(f"| {url} | {r['requests']} | {r['transfer'] / 1024:.1f} KiB "
                  f"| {r['decoded'] / 1024:.1f} KiB | {len(r['origins'])} |")
        call(base, "DELETE", s)
    finally:
        driver.terminate()
        driver.wait()


if __name__ == "__main__":
    main()
