#!/usr/bin/env bash
# make bench-images: Depot's image import and export beside `qemu-img convert`
# doing the same conversion in the same directory, same run. The source: a
# 1 GiB image with 256 MiB of random data in 64 runs of 4 MiB (the rest
# holes), as raw and as qcow2 (qemu-img convert of the raw). Each row times
# Depot (the CLI with --wait, i.e. the job to its end, its result made
# durable) and qemu-img convert -t writeback (which flushes too; its default,
# unsafe, does not), three
# rounds alternating, page cache dropped before each; the table gives the
# medians, qemu/Depot (>= 1.0: Depot as fast or faster), and the bytes each
# result holds. Then a 1 GiB image streamed through the API (--from -, a
# pipe) with depotd's peak RSS. Not part of `make test`.
# Env: BENCH_DIR (scratch, default /var/tmp/depot-bench-images), DEPOTD, DEPOT.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
depotd=${DEPOTD:-$here/.build/release/depotd}
depot=${DEPOT:-$here/.build/release/depot}
dir=${BENCH_DIR:-/var/tmp/depot-bench-images}
rm -rf "$dir"
mkdir -p "$dir"
data=$dir/data
"$depotd" --data "$data" --api 127.0.0.1:0 --portal 127.0.0.1:0 --log-level warning >"$dir/depotd.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$data/api.url" ] && break; sleep 0.1; done
export DEPOT_API DEPOT_TOKEN
DEPOT_API=$(cat "$data/api.url")
DEPOT_TOKEN=$(cat "$data/api-token")
images=$data/images
pool=$data/pools/default

python3 - "$images/src.raw" <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    for i in range(64):
        f.seek(i * (16 << 20))
        f.write(os.urandom(4 << 20))
PY
qemu-img convert -f raw -O qcow2 "$images/src.raw" "$images/src.qcow2"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
alloc() { du -B1 "$1" | cut -f1; }
n=0
printf '%-34s %9s %9s %7s %12s %12s\n' "conversion (median of 3)" "Depot s" "qemu s" "q/D" "Depot bytes" "qemu bytes"
# row NAME SOURCE QEMU_IN QEMU_OUT DEPOT_ARGS... (import when DEPOT_ARGS[0] is import)
row() {
  local name=$1 src=$2 fin=$3 fout=$4; shift 4
  local d=() q=() dbytes qbytes
  for _ in 1 2 3; do
    n=$((n + 1))
    drop
    case $1 in
    import) d+=("$(secs "$depot" volume import "default/v$n" --from "$src" --wait --quiet "${@:2}")")
      dbytes=$(alloc "$(ls "$pool"/v$n.* | head -1)") ;;
    export) d+=("$(secs "$depot" volume export "$2" --to "$images/e$n.$fout" --format "$fout" --wait --quiet)")
      dbytes=$(alloc "$images/e$n.$fout") ;;
    esac
    drop
    q+=("$(secs qemu-img convert -t writeback -f "$fin" -O "$fout" "$src" "$dir/q$n.$fout")")
    qbytes=$(alloc "$dir/q$n.$fout")
    rm -f "$dir/q$n.$fout"
  done
  python3 - "$name" "$dbytes" "$qbytes" "${d[@]}" "${q[@]}" <<'PY'
import statistics, sys
name, db, qb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v = [float(x) for x in sys.argv[4:]]
d, q = statistics.median(v[:3]), statistics.median(v[3:])
print(f"{name:34s} {d:9.3f} {q:9.3f} {q/d:7.2f} {db:12d} {qb:12d}")
PY
}
row "import raw -> raw" "$images/src.raw" raw raw import
row "import qcow2 -> raw" "$images/src.qcow2" qcow2 raw import
row "import qcow2 -> qcow2" "$images/src.qcow2" qcow2 qcow2 import --as qcow2
"$depot" volume import default/src --from "$images/src.raw" --wait --quiet
"$depot" snapshot create default/src@s >/dev/null
# qemu-img converts the image the volume was imported from (the snapshot's content).
row "export raw (snapshot)" "$images/src.raw" raw raw export default/src@s
row "export qcow2 (snapshot)" "$images/src.raw" raw qcow2 export default/src@s

# Streamed: 1 GiB of random data through a pipe and the API.
head -c $((1 << 30)) /dev/urandom >"$dir/stream.raw"
before=$(awk '/VmHWM/ {print $2}' /proc/$dpid/status)
drop
t=$(secs sh -c "cat '$dir/stream.raw' | '$depot' volume import default/streamed --from - --wait --quiet")
peak=$(awk '/VmHWM/ {print $2}' /proc/$dpid/status)
echo
echo "1 GiB streamed (--from -, a pipe): ${t} s; depotd peak RSS $((before / 1024)) MiB before, $((peak / 1024)) MiB after (VmHWM)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(df -T "$dir" | awk 'NR==2 {print $2}') on $(df "$dir" | awk 'NR==2 {print $1}')"
