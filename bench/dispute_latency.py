#!/usr/bin/env python3
"""Dispute latency: from a dispute row committed in the app's database to the fake Telegram
receiving its DISPUTE alert.

  dispute_latency.py DB_URL TELEGRAM_LOG RUNS
      DB_URL is the app database (a `disputes (id serial, reason text)` table) that a running
      opswatch watches with `[disputes] every`; TELEGRAM_LOG is the log of fake_telegram.py.
      Each run inserts one row with psql, takes the commit time from the database's clock in a
      second statement (after the commit), waits for the message "New dispute <id>" and takes
      receive time - commit time. Then it waits a random 0-1 s, so the inserts fall at every
      phase of the polling interval.
      Prints key=value lines: latency_ms (every run), median_ms, max_ms, min_ms, runs_ok,
      runs_timed_out.
All times come from this host's clock (PostgreSQL runs on the same machine). Standard library
only; psql must be on PATH.
"""

import random
import statistics
import subprocess
import sys
import time


def insert(db_url: str) -> tuple[str, float]:
    out = subprocess.run(
        [
            "psql", db_url, "-qtAX",
            "-c", "INSERT INTO disputes (reason) VALUES ('bench') RETURNING id",
            "-c", "SELECT extract(epoch FROM clock_timestamp())",
        ],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return out[0], float(out[1])


def received(log_path: str, dispute_id: str) -> float | None:
    needle = f"New dispute {dispute_id}"
    try:
        with open(log_path) as f:
            for line in f:
                p = line.split(None, 4)
                if len(p) >= 5 and p[0] == "msg" and p[4].rstrip().endswith(needle):
                    return float(p[1])
    except FileNotFoundError:
        pass
    return None


def main() -> None:
    db_url, log_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    latencies, timed_out = [], 0
    for _ in range(runs):
        dispute_id, committed = insert(db_url)
        end = time.time() + 20
        got = None
        while time.time() < end and got is None:
            got = received(log_path, dispute_id)
            if got is None:
                time.sleep(0.01)
        if got is None:
            timed_out += 1
        else:
            latencies.append((got - committed) * 1000)
        time.sleep(random.uniform(0, 1))
    for ms in latencies:
        print(f"latency_ms={ms:.0f}")
    if latencies:
        print(f"median_ms={statistics.median(latencies):.0f}")
        print(f"max_ms={max(latencies):.0f}")
        print(f"min_ms={min(latencies):.0f}")
    print(f"runs_ok={len(latencies)}")
    print(f"runs_timed_out={timed_out}")


if __name__ == "__main__":
    main()
