#!/usr/bin/env python3
"""Times the API list routes of a running opswatch (bench/api_lists.sh starts it on a year of
history): each route N times on one keep-alive connection after 3 warm-up requests, checks
every answer is 200 JSON, prints p50/p95/max per route (client-side, loopback).

Usage: bench/api_lists.py BASE_URL [N]
"""
import http.client
import json
import sys
import time
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50

conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)


def get(path):
    started = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    took = time.perf_counter() - started
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}: {body[:300]!r}")
    return json.loads(body), took


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# The second page of the alerts of the last 30 days: a cursor taken from the first page.
first, _ = get("/api/v1/alerts?since=30d&limit=100")
alerts_page2 = first.get("next")
if not alerts_page2:
    raise SystemExit("no `next` on a full page of alerts: is the year seeded?")

ROUTES = [
    ("/api/v1/status", None),
    ("/api/v1/checks", "checks"),
    ("/api/v1/checks/site-0/results", "results"),
    ("/api/v1/checks/site-0/results?since=7d&limit=1000", "results"),
    ("/api/v1/checks/site-0/results?since=1y&limit=100", "results"),
    ("/api/v1/checks/site-0/uptime?range=24h", None),
    ("/api/v1/checks/site-0/uptime?range=1y", None),
    ("/api/v1/metrics/memory?range=24h", "series"),
    ("/api/v1/metrics/memory?range=1y", "series"),
    ("/api/v1/metrics/load?range=7d", "series"),
    ("/api/v1/metrics/disk?range=30d", "series"),
    ("/api/v1/metrics/pm2?range=24h", "series"),
    ("/api/v1/alerts", "alerts"),
    ("/api/v1/alerts?since=30d&limit=100", "alerts"),
    (alerts_page2, "alerts"),
    ("/api/v1/alerts?since=1y&limit=1000", "alerts"),
    ("/api/v1/disputes", "disputes"),
    ("/api/v1/disputes?since=30d&limit=100", "disputes"),
    ("/api/v1/reports", "reports"),
    ("/api/v1/reports?since=1y&limit=100", "reports"),
    ("/api/v1/silences", None),
    ("/api/v1/jobs", "jobs"),
    ("/api/v1/processes", None),
]

print(f"| route | rows | p50 ms | p95 ms | max ms |")
print("|---|---|---|---|---|")
worst = (0.0, "")
for path, key in ROUTES:
    for _ in range(3):
        get(path)
    times = []
    rows = ""
    for _ in range(N):
        body, took = get(path)
        times.append(took * 1000)
        if key is not None:
            rows = str(len(body[key]))
    shown = path if path != alerts_page2 else "/api/v1/alerts?since=30d&limit=100&cursor=… (page 2)"
    p95 = pct(times, 95)
    worst = max(worst, (p95, shown))
    print(f"| `{shown}` | {rows} | {pct(times, 50):.1f} | {p95:.1f} | {max(times):.1f} |")
print(f"\nslowest p95: {worst[0]:.1f} ms ({worst[1]}); {N} timed requests per route")
