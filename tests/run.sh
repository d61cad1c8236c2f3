#!/usr/bin/env bash
# The test command (README): prepares what the tests need on this machine, then runs the
# same gates as CI: formatting, clippy with warnings as errors, every test.
#
# As root on Debian it installs and starts what is missing (PostgreSQL 15, PM2). Elsewhere it
# uses what it finds; PostgreSQL tests then read OPSWATCH_TEST_PG_URL and skip with a notice
# when it is unset (outside CI only: with CI=true they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
as_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    if ! as_root || ! command -v apt-get >/dev/null; then
        say "cannot install $* here (not root on Debian); tests needing it may skip"
        return 0
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_postgres() {
    if [ -n "${OPSWATCH_TEST_PG_URL:-}" ]; then
        say "PostgreSQL from OPSWATCH_TEST_PG_URL"
        return
    fi
    as_root || { say "not root: set OPSWATCH_TEST_PG_URL to run the PostgreSQL tests"; return; }
    if ! command -v pg_ctlcluster >/dev/null; then
        say "installing PostgreSQL"
        apt_install postgresql
    fi
    if ! su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1; then
        say "starting PostgreSQL"
        service postgresql start >/dev/null
        for _ in $(seq 1 50); do
            su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
            sleep 0.2
        done
    fi
    # TCP logins on 127.0.0.1 need a password (scram); set one through peer auth.
    local pw=opswatch-test
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD '$pw'\"" >/dev/null
    export OPSWATCH_TEST_PG_URL="postgres://postgres:$pw@127.0.0.1:5432/postgres"
    say "PostgreSQL ready"
}

setup_pm2() {
    if command -v pm2 >/dev/null; then return; fi
    if as_root && command -v npm >/dev/null; then
        say "installing PM2 from npm"
        npm install -g --silent --no-fund --no-audit pm2 >/dev/null
    else
        say "pm2 not found and cannot be installed here; PM2 tests may skip"
    fi
}

setup_chromium() {
    # The dashboard's browser test drives headless Chromium through chromedriver.
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return; fi
    say "installing Chromium and chromedriver"
    apt_install chromium chromium-driver
}

setup_postgres
setup_pm2
setup_chromium
# The HTTPS check tests run a real TLS server (openssl s_server).
command -v openssl >/dev/null || apt_install openssl

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
say "cargo test"
# Most integration tests wait on sockets, processes and PostgreSQL rather than compute, so
# more of them run at once than there are cores (libtest's default is one per core).
cargo test --locked --all-targets -- --test-threads "${OPSWATCH_TEST_THREADS:-8}"
cargo test --locked --doc
# The Debian package: cargo-deb, one release build, install into a clean root, /health 200.
say "Debian package"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
bash tests/package.sh
say "schemathesis against the running binary and its OpenAPI document"
tests/schemathesis.sh
