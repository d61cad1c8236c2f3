#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document (schemathesis, from PyPI, in a
# virtual environment under target/): no answer may be a 5xx, and every answer must match the
# documented status codes, content type and schema. Runs twice: with a read token on the GET
# routes, then with a write token on every route. Bounded: a few examples per operation.
#
# Usage: tests/schemathesis.sh [MAX_EXAMPLES]   (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${1:-25}"
venv=target/venv
say() { printf '==> %s\n' "$*"; }

if [ ! -x "$venv/bin/schemathesis" ]; then
    say "installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis
fi

cargo build --locked --quiet --bin opswatch
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/opswatch.toml" <<TOML
[storage]
url = "sqlite://$work/data/opswatch.db"
[[http]]
name = "self"
url = "http://127.0.0.1:$port/health"
every = "2s"
[[auth.tokens]]
name = "fuzz-read"
token = "schemathesis-read-token"
[[auth.tokens]]
name = "fuzz-write"
token = "schemathesis-write-token"
scope = "write"
TOML

target/debug/opswatch --config "$work/opswatch.toml" serve --listen "127.0.0.1:$port" \
    2>"$work/opswatch.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
    sleep 0.1
done

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
run() {
    "$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
        --checks "$checks" --max-examples "$max_examples" --seed 15 \
        --generation-database none --no-color --workers 1 --request-timeout 10 "$@"
}
status=0
say "schemathesis: read token, GET routes"
run -H "Authorization: Bearer schemathesis-read-token" --include-method GET || status=1
say "schemathesis: write token, every route"
run -H "Authorization: Bearer schemathesis-write-token" || status=1
if grep -q '"level":"ERROR"\|ERROR' "$work/opswatch.log"; then
    say "opswatch logged errors during the run:"
    grep 'ERROR' "$work/opswatch.log" | head -20
    status=1
fi
exit "$status"
