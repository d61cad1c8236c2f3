#!/usr/bin/env python3
"""Login figures against a running opswatch (bench/login.sh starts it).

1. POST /login cost: N sequential logins with the right password and N with a wrong one for an
   unknown user (what an attacker probing names sees), one at a time, latency of the POST.
2. /health while logins arrive at RATE per second (right password, so the rate limit does not
   turn them into cheap 429s): p50/p95/p99 of /health, and how the logins fared.

Usage: bench/login.py BASE_URL USER PASSWORD [N] [RATE] [SECONDS]
"""
import http.client
import re
import statistics
import sys
import threading
import time
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
user, password = sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 20
RATE = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
SECONDS = float(sys.argv[6]) if len(sys.argv) > 6 else 20.0


def conn():
    return http.client.HTTPConnection(base.hostname, base.port, timeout=30)


def login(name, pw):
    """One GET /login + POST /login on fresh connections; returns (status, POST seconds)."""
    c = conn()
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    cookie = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie"][0]
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    body = urllib.parse.urlencode({"name": name, "password": pw, "csrf": csrf, "next": "/"})
    started = time.perf_counter()
    c.request("POST", "/login", body, {
        "content-type": "application/x-www-form-urlencoded", "cookie": cookie})
    r = c.getresponse()
    r.read()
    took = time.perf_counter() - started
    c.close()
    return r.status, took


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(x):
    return f"{x * 1000:.1f} ms"


def summary(name, values):
    print(f"{name}: n={len(values)} p50 {ms(pct(values, 50))} p95 {ms(pct(values, 95))} "
          f"p99 {ms(pct(values, 99))} max {ms(max(values))} mean {ms(statistics.mean(values))}")


# 1. Cost of one login.
login(user, password)  # warm: connections, first session insert
right = []
for _ in range(N):
    status, took = login(user, password)
    assert status == 303, status
    right.append(took)
summary("POST /login right password (sequential)", right)
# 2. /health while logins arrive at RATE per second.
stop = threading.Event()
login_times, login_status = [], []


def arrivals():
    interval = 1.0 / RATE
    next_at = time.perf_counter()
    threads = []
    while not stop.is_set():
        def one():
            s, t = login(user, password)
            login_status.append(s)
            login_times.append(t)
        th = threading.Thread(target=one)
        th.start()
        threads.append(th)
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    for th in threads:
        th.join()


health = []
# Baseline: /health alone.
hc = conn()
for _ in range(200):
    t = time.perf_counter()
    hc.request("GET", "/health")
    hc.getresponse().read()
    health.append(time.perf_counter() - t)
summary("/health alone (200 sequential, keep-alive)", health)

loader = threading.Thread(target=arrivals)
loader.start()
time.sleep(2)  # let the queue reach its steady state
health = []
end = time.perf_counter() + SECONDS
while time.perf_counter() < end:
    t = time.perf_counter()
    hc.request("GET", "/health")
    hc.getresponse().read()
    health.append(time.perf_counter() - t)
    time.sleep(0.01)
stop.set()
loader.join()
summary(f"/health during {RATE:g} logins/s ({SECONDS:g} s, every 10 ms)", health)
ok = sum(1 for s in login_status if s == 303)
print(f"logins during the burst: {len(login_status)} sent, {ok} answered 303")
summary("POST /login during the burst (queued behind the 2-check semaphore)", login_times)

# Last: it blocks this address for 15 minutes.
unknown = []
for i in range(N):
    # A different unknown name each time, from one address: after 5 failures the address is
    # blocked and the answer becomes a cheap 429, so only the first 5 are timed.
    status, took = login(f"nobody{i}", "wrong")
    if status == 429:
        break
    assert status == 401, status
    unknown.append(took)
summary("POST /login unknown user (sequential, until the rate limit)", unknown)

