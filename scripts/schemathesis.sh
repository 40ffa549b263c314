#!/usr/bin/env bash
# Schemathesis against Docs/openapi.yaml: a fresh depotd (debug build) on
# free loopback ports with its API throttle off (--api-auth-failures 0, or
# the missing-token checks lock the address out and every answer is 429),
# every check but unsupported_method (405 is not answered yet: Security.md),
# N examples per operation. Exit status: schemathesis's (0: no failure).
# Usage: scripts/schemathesis.sh [EXAMPLES] [SEED]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
examples="${1:-20}"
seed="${2:-1}"
st="$root/.build-venv/bin/st"
[ -x "$st" ] || { echo "schemathesis missing: run scripts/install-deps.sh" >&2; exit 2; }
work="$(mktemp -d)"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api="127.0.0.1:$(port)"
"$root/.build/debug/depotd" --data "$work/data" --api "$api" --portal "127.0.0.1:$(port)" \
  --api-auth-failures 0 > "$work/depotd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/data/api-token" ] && curl -sf "http://$api/health" > /dev/null && break; sleep 0.1; done
token="$(cat "$work/data/api-token")"
set +e
(cd "$work" && "$st" run "$root/Docs/openapi.yaml" --url "http://$api" -H "Authorization: Bearer $token" \
  --checks all --exclude-checks unsupported_method -n "$examples" --seed "$seed" -w 1 --request-timeout 20)
status=$?
if grep -q "Fatal\|panic\|Fatal error" "$work/depotd.log"; then
  echo "depotd trapped:" >&2; tail -20 "$work/depotd.log" >&2; status=1
fi
kill -0 $pid 2>/dev/null || { echo "depotd is gone" >&2; status=1; }
exit $status
