#!/usr/bin/env bash
# Schemathesis against Docs/openapi.yaml: a fresh depotd (debug build) on
# free loopback ports with its API throttle off (--api-auth-failures 0, or
# the missing-token checks lock the address out and every answer is 429),
# every check (unsupported_method included: 405 with Allow),
# N examples per operation, against fixtures made first (below). Exit status:
# schemathesis's (0: no failure), or 1 when depotd trapped or died.
# Usage: scripts/schemathesis.sh [EXAMPLES] [SEED]   (SEED: a number, or random; default 1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
examples="${1:-20}"
seed="${2:-1}"
seed_flag=(--seed "$seed")
[ "$seed" = random ] && seed_flag=()
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
# Objects for the path parameters to name (else nearly every call on one is a
# 404 that never reaches its logic): a pool, a raw and a qcow2 volume, a
# snapshot, a target with a LUN and an ACL, an export, a finished job. The
# fuzzer names them in 60% of its cases (dictionaries) and anything else in
# the rest, and may delete them as it goes.
call() { curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  "http://$api$2" ${3:+-d "$3"}; }
iqn=iqn.2026-12.test.depot:st initiator=iqn.2026-12.test.depot:init
call POST /v1/pools '{"name":"st"}' > /dev/null
call POST /v1/pools/st/volumes '{"name":"v","sizeBytes":1048576,"format":"qcow2"}' > /dev/null
call POST /v1/pools/st/volumes '{"name":"r","sizeBytes":1048576}' > /dev/null
call POST /v1/pools/st/volumes/v/snapshots '{"name":"s"}' > /dev/null
job="$(call POST /v1/pools/st/volumes/v/clone '{"snapshot":"s","target":"st/full","full":true}' |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])')"
call POST /v1/targets "{\"iqn\":\"$iqn\"}" > /dev/null
call POST "/v1/targets/$iqn/luns" '{"volume":"st/r","lun":0}' > /dev/null
call POST "/v1/targets/$iqn/acls" "{\"initiator\":\"$initiator\"}" > /dev/null
call POST /v1/exports '{"pool":"st","rules":[{"client":"10.0.0.0/8","access":"rw","squash":"root"}]}' > /dev/null
config="$work/schemathesis.toml"
{
  cat "$root/scripts/schemathesis.toml"
  # DICTIONARY VALUE...; a linked clone stays in its snapshot's pool and a
  # LUN maps a volume that is there (422 otherwise), hence target and volume.
  for d in "pool st" "name v r full" "snap s" "iqn $iqn" "initiator $initiator" "id $job" \
    "target st/c1 st/c2" "volume st/v st/r"; do
    set -- $d; name=$1; shift
    printf '\n[dictionaries.%s]\nvalues = [%s]\n' "$name" "$(printf '"%s", ' "$@" | sed 's/, $//')"
  done
  printf '\n[dictionaries.lun]\nvalues = [0]\n\n[dictionaries.group]\nvalues = [1]\n\n[parameters]\n'
  for p in pool name snap iqn initiator id lun group; do
    printf '"path.%s" = { dictionary = "%s", probability = 0.6 }\n' "$p" "$p"
  done
  for p in target volume; do
    printf '"body.%s" = { dictionary = "%s", probability = 0.6 }\n' "$p" "$p"
  done
} > "$config"
set +e
mkdir -p "$work/sandbox"
(cd "$work" && DEPOT_SANDBOX="$work/sandbox" PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks "$st" --config-file "$config" run "$root/Docs/openapi.yaml" --url "http://$api" -H "Authorization: Bearer $token" \
  --checks all -n "$examples" "${seed_flag[@]}" -w 1 --request-timeout 20)
status=$?
if grep -q "Fatal\|panic\|Fatal error" "$work/depotd.log"; then
  echo "depotd trapped:" >&2; tail -20 "$work/depotd.log" >&2; status=1
fi
kill -0 $pid 2>/dev/null || { echo "depotd is gone" >&2; status=1; }
exit $status
