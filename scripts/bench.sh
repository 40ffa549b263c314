#!/usr/bin/env bash
# make bench: Depot against Linux tgt, side by side, with real initiators
# (../shared/bin/iscsi-bench: qemu-img bench and iscsi-perf). Both LUNs are 2 GiB
# thin raw files in the same directory. Prints the table, depotd's peak RSS
# during the run, and the machine. Not part of `make test`.
# Env: BENCH_DIR (scratch, default /var/tmp/depot-bench), BENCH_SECS, BENCH_SCALE
# (passed to iscsi-bench), DEPOTD (binary, default .build/release/depotd).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$here/../shared/bin" && pwd)
depotd=${DEPOTD:-$here/.build/release/depotd}
depot=${DEPOT:-$here/.build/release/depot}
dir=${BENCH_DIR:-/var/tmp/depot-bench}
rm -rf "$dir"
mkdir -p "$dir"
# A free port below 30000 whose +1000 (tgtd's control port) is free too.
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 28999)
    try:
        for q in (p, p + 1000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
PY
}

. "$here/scripts/bench-lun.sh"
tport=$(free_port)
cleanup() {
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$shared/peer-tgtd" stop "$tport" >/dev/null 2>&1 || true
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
}
trap cleanup EXIT
start_bench_lun "$dir" "$depotd" "$depot"
dpid=$BENCH_PID
ours=$BENCH_URL
peer=$("$shared/peer-tgtd" start "$tport" "$dir/pool/tgt.img" 2G)

# depotd's peak resident set during the run (VmHWM), sampled with the current one.
( while kill -0 "$dpid" 2>/dev/null; do grep -E 'VmRSS' /proc/$dpid/status | awk '{print $2}' >>"$dir/rss.samples"; sleep 0.5; done ) &
mpid=$!

echo "Depot: $ours"
echo "tgt:   $peer"
"$shared/iscsi-bench" "$ours" "$peer"
peak=$(awk '/VmHWM/ {print $2}' /proc/$dpid/status)
echo
echo "depotd peak RSS during the run: $((peak / 1024)) MiB (VmHWM)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(df -T "$dir" | awk 'NR==2 {print $2}') on $(df "$dir" | awk 'NR==2 {print $1}')"
