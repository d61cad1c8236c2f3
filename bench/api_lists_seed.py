#!/usr/bin/env python3
"""Adds a year of alerts (each with a delivered outbox row), reports and disputes to a SQLite
store that examples/history_year.rs filled with a year of samples and check results, so that
every API list route has a year of rows behind it (bench/api_lists.sh).

A busy year of a small server: an alert every 2 hours (4,380), 4 disputes a day (1,460), and
the daily, weekly and monthly reports (429). Deterministic (fixed seed).

Without the generator's year (API_LISTS_NO_HISTORY=1 in bench/api_lists.sh), it also makes the
five checks `site-0`..`site-4` with the raw results retention keeps (7 days every 5 minutes,
1 % failures) but no roll-ups: windows longer than a week then read nothing older.

Usage: bench/api_lists_seed.py SQLITE_PATH END_MS
"""
import json
import random
import sqlite3
import sys

path, end_ms = sys.argv[1], int(sys.argv[2])
DAY = 86_400_000
start_ms = end_ms - 365 * DAY
rng = random.Random(15)
db = sqlite3.connect(path)
db.execute("PRAGMA foreign_keys = ON")
row = db.execute("SELECT host FROM checks LIMIT 1").fetchone()
if row is None:
    with open("/proc/sys/kernel/hostname") as f:
        host = f.read().strip() or "localhost"
    for e in range(5):
        cid = db.execute("INSERT INTO checks (host, name, kind, state) VALUES (?, ?, 'http', 'up')",
                         (host, f"site-{e}")).lastrowid
        at = (end_ms - 7 * DAY) // 300_000 * 300_000
        results = []
        while at < end_ms:
            ok = rng.random() >= 0.01
            results.append((cid, at, int(ok), rng.randrange(20, 300), 200 if ok else 503))
            at += 300_000
        db.executemany("INSERT INTO check_results (check_id, at_ms, ok, latency_ms, status_code)"
                       " VALUES (?, ?, ?, ?, ?)", results)
    print("no generated history: made 5 checks with 7 days of raw results", file=sys.stderr)
else:
    host = row[0]

alerts = []
t = start_ms
n = 0
while t < end_ms:
    n += 1
    source = f"site-{rng.randrange(5)}"
    severity = rng.choice(["critical", "warning", "resolved", "info"])
    alerts.append((f"bench:{n}", t, severity, source, "http", f"{source} is DOWN",
                   "HTTP 503", None, None, None))
    t += 2 * 3_600_000 + rng.randrange(-600_000, 600_000)
db.executemany(
    "INSERT INTO alerts (dedup_key, created_ms, severity, source, kind, title, value, threshold,"
    " hint, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", alerts)
db.execute(
    "INSERT INTO outbox (alert_id, channel, state, attempts, next_attempt_ms, sent_ms)"
    " SELECT id, 'telegram', 'sent', 1, created_ms, created_ms + 400 FROM alerts"
    " WHERE dedup_key LIKE 'bench:%'")

disputes = []
for day in range(365):
    for k in range(4):
        at = start_ms + day * DAY + rng.randrange(DAY)
        fields = {"id": f"dp-{day}-{k}", "amount": f"{rng.randrange(5, 500)}.00",
                  "reason": "fraudulent"}
        disputes.append((f"dp-{day}-{k}", "sql", json.dumps(fields), at))
db.executemany("INSERT INTO disputes (id, source, fields, created_ms) VALUES (?, ?, ?, ?)",
               disputes)

reports = []
body = json.dumps({"checks": [{"name": f"site-{i}", "uptime_pct": 99.9} for i in range(5)],
                   "alerts": 12, "disputes": 4})
for day in range(365):
    at = start_ms + day * DAY + 8 * 3_600_000
    reports.append((host, "daily", at, at, "uptime 99.9 %, 12 alerts", body, "daily summary"))
    if day % 7 == 0:
        reports.append((host, "weekly", at + 60_000, at + 60_000, "no errors", body, "weekly"))
    if day % 30 == 0:
        reports.append((host, "security", at + 120_000, at + 120_000, "3 failed logins", body,
                        "security"))
db.executemany(
    "INSERT INTO reports (host, kind, created_ms, occurrence_ms, summary, body, text)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)", reports)
db.commit()
print(f"seeded {len(alerts)} alerts, {len(disputes)} disputes, {len(reports)} reports "
      f"over 365 days (host {host!r})")
