#!/usr/bin/env bash
# make bench: Depot beside Linux tgt and istgt, in one run, with real
# initiators (QEMU's block layer: qemu-img bench over libiscsi; libiscsi's
# iscsi-perf), and every qemu-img row's ceiling: the same qemu-img bench
# command on a local file in the same directory, same cache mode, no iSCSI.
# All LUNs are 2 GiB thin raw files in one directory. Each row runs Depot,
# tgt, istgt, local, then again in that order; the table gives the better of
# the two runs of each. Then CPU per operation of each target process
# (utime+stime from /proc, µs/op) at QD1, depotd's peak RSS, the machine.
# Not part of `make test`.
# Env: BENCH_DIR (scratch, default /var/tmp/depot-bench), BENCH_SCALE (1: request
# counts), BENCH_SECS (5: iscsi-perf seconds), DEPOTD, DEPOT (binaries), BENCH_EXTRA
# (more depotd options, e.g. "--inline-write-max 64" to measure a setting).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$here/../shared/bin" && pwd)
depotd=${DEPOTD:-$here/.build/release/depotd}
depot=${DEPOT:-$here/.build/release/depot}
dir=${BENCH_DIR:-/var/tmp/depot-bench}
k=${BENCH_SCALE:-1}
secs=${BENCH_SECS:-5}
rm -rf "$dir"
mkdir -p "$dir"
# A free port below 30000 whose +1000 (tgtd's and istgt's control port) is free too.
free_port() {
  python3 - "$@" <<'PY'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]} | {int(p) + 1000 for p in sys.argv[1:]}
while True:
    p = random.randint(20000, 28999)
    if p in taken or p + 1000 in taken:
        continue
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
iport=$(free_port "$tport")
cleanup() {
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$shared/peer-tgtd" stop "$tport" >/dev/null 2>&1 || true
  "$shared/peer-istgt" stop "$iport" >/dev/null 2>&1 || true
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
}
trap cleanup EXIT
start_bench_lun "$dir" "$depotd" "$depot"
dpid=$BENCH_PID
ours=$BENCH_URL
tgt=$("$shared/peer-tgtd" start "$tport" "$dir/pool/tgt.img" 2G)
istgt=$("$shared/peer-istgt" start "$iport" "$dir/pool/istgt.img" 2G)
tpid=$(cat "/tmp/peer-tgtd-$tport.pid")
ipid=$(cat "/tmp/peer-istgt-$iport/pid.run")
local=$dir/pool/local.img
truncate -s 2G "$local"

# depotd's peak resident set during the run (VmHWM), sampled with the current one.
( while kill -0 "$dpid" 2>/dev/null; do grep -E 'VmRSS' /proc/$dpid/status | awk '{print $2}' >>"$dir/rss.samples"; sleep 0.5; done ) &
mpid=$!

echo "Depot: $ours"
echo "tgt:   $tgt"
echo "istgt: $istgt"
echo "local: $local (the ceiling: the same qemu-img bench, no iSCSI)"
# Precondition: the first GiB of each written, so reads hit written blocks.
for u in "$ours" "$tgt" "$istgt" "$local"; do
  qemu-img bench -f raw -c 1024 -d 8 -s 1048576 -w --pattern=0x11 "$u" >/dev/null 2>&1 || { echo "cannot write to $u" >&2; exit 1; }
done

# qemu-img bench: requests per second. count depth size extra-args... target
qb() {
  local count=$1 depth=$2 size=$3 s; shift 3
  s=$(qemu-img bench -f raw -c "$count" -d "$depth" -s "$size" "$@" 2>&1 | sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p')
  [ -n "$s" ] && python3 -c "print(f'{$count/$s:.0f}')" || echo 0
}
# iscsi-perf: average IOPS. blocks depth target
ip() {
  timeout $((secs + 10)) iscsi-perf -m "$2" -b "$1" -t "$secs" -r "$3" 2>&1 | tr '\r' '\n' \
    | sed -n 's/^iops average \([0-9]*\).*/\1/p' | tail -1 | grep . || echo 0
}
best() { echo $(( $1 > $2 ? $1 : $2 )); }
printf '\n%-40s %10s %10s %10s %10s  %7s %7s %7s %7s\n' "workload (better of 2 runs each)" Depot tgt istgt local \
  "D/tgt" "D/istgt" "D/best" "D/ceil"
# row name unit bytes-per-op tool args... (the target last, appended here)
row() {
  local name=$1 unit=$2 bpo=$3 tool=$4; shift 4
  local d1 t1 i1 c1=0 d2 t2 i2 c2=0
  d1=$($tool "$@" "$ours"); t1=$($tool "$@" "$tgt"); i1=$($tool "$@" "$istgt")
  [ "$tool" = qb ] && c1=$($tool "$@" "$local")
  d2=$($tool "$@" "$ours"); t2=$($tool "$@" "$tgt"); i2=$($tool "$@" "$istgt")
  [ "$tool" = qb ] && c2=$($tool "$@" "$local")
  python3 - "$name" "$unit" "$bpo" "$(best "$d1" "$d2")" "$(best "$t1" "$t2")" "$(best "$i1" "$i2")" "$(best "$c1" "$c2")" <<'PY'
import sys
name, unit, bpo = sys.argv[1], sys.argv[2], int(sys.argv[3])
d, t, i, c = map(float, sys.argv[4:8])
f = (lambda v: f"{v*bpo/1e6:6.0f} MB/s") if unit == "MB/s" else (lambda v: f"{v:10.0f}")
r = lambda a, b: f"{a/b:7.2f}" if b else "      -"
print(f"{name:40s} {f(d)} {f(t)} {f(i)} {f(c) if c else '         -'}  {r(d, t)} {r(d, i)} {r(d, max(t, i))} {r(d, c)}")
PY
}
n=$((20000 * k))
row "4K random read QD32 (iscsi-perf)" IOPS 4096 ip 8 32
row "4K seq write QD32" IOPS 4096 qb $((100000 * k)) 32 4096 -w --pattern=0x5a
row "4K seq read QD1" IOPS 4096 qb "$n" 1 4096
row "4K seq write QD1" IOPS 4096 qb "$n" 1 4096 -w --pattern=0x5a
row "128K seq read QD16" MB/s 131072 qb $((8000 * k)) 16 131072
row "128K seq write QD16" MB/s 131072 qb $((8000 * k)) 16 131072 -w --pattern=0x5a
row "1M seq write QD8" MB/s 1048576 qb $((1000 * k)) 8 1048576 -w --pattern=0x5a
# Durable writes: FUA (QEMU's writethrough sets FUA on each write), and a
# SYNCHRONIZE CACHE after every write (writeback, --flush-interval=1).
row "4K write QD1 FUA (writethrough)" IOPS 4096 qb $((4000 * k)) 1 4096 -w --pattern=0x5a -t writethrough
row "4K write QD32 FUA (writethrough)" IOPS 4096 qb $((20000 * k)) 32 4096 -w --pattern=0x5a -t writethrough
row "4K write QD1 + SYNC CACHE every write" IOPS 4096 qb $((4000 * k)) 1 4096 -w --pattern=0x5a --flush-interval=1
# qemu-img bench has no random mode: 64 KiB writes 1 MiB + 64 KiB apart (wrapping), no two near.
row "64K strided write QD4" IOPS 65536 qb $((20000 * k)) 4 65536 -w --pattern=0x5a -S $((1048576 + 65536))

# CPU per operation of each target process (all its threads), at QD1.
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_op() { # pid count args... target
  local pid=$1 count=$2 before after; shift 2
  before=$(cpu "$pid")
  qemu-img bench -f raw -c "$count" "$@" >/dev/null 2>&1
  after=$(cpu "$pid")
  python3 -c "print(f'{($after - $before) * 1e6 / $ticks / $count:8.1f}')"
}
echo
printf '%-40s %10s %10s %10s   (target process utime+stime / requests)\n' "CPU per operation, µs" Depot tgt istgt
cpurow() { # name count args...
  local name=$1 count=$2; shift 2
  printf '%-40s %10s %10s %10s\n' "$name" "$(per_op "$dpid" "$count" "$@" "$ours")" \
    "$(per_op "$tpid" "$count" "$@" "$tgt")" "$(per_op "$ipid" "$count" "$@" "$istgt")"
}
cpurow "4K seq read QD1" $((50000 * k)) -d 1 -s 4096
cpurow "4K seq write QD1" $((50000 * k)) -d 1 -s 4096 -w --pattern=0x5a
cpurow "4K write QD1 FUA (writethrough)" $((5000 * k)) -d 1 -s 4096 -w --pattern=0x5a -t writethrough

peak=$(awk '/VmHWM/ {print $2}' /proc/$dpid/status)
echo
echo "depotd peak RSS during the run: $((peak / 1024)) MiB (VmHWM)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(df -T "$dir" | awk 'NR==2 {print $2}') on $(df "$dir" | awk 'NR==2 {print $1}')"
