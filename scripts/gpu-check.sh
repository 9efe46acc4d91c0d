#!/usr/bin/env bash
# The GPU checks, in one call, for a lent GPU machine that has no Rust toolchain and no
# registry access (docs/benchmarks.md says how its results are recorded):
#   1. the card and the driver (nvidia-smi), NVRTC found on the machine, `proofmill devices`;
#   2. the accel crate's conformance tests with PROOFMILL_REQUIRE_GPU=1 (edge cases: zero
#      scalars, identity and duplicate bases, odd sizes, cosets, batches);
#   3. `proofmill selftest --max-log 24`: GPU and CPU MSM/NTT against halo2 at 2^10..2^24, then
#      a transfer_batch proof through the CPU engine and through the CUDA engine;
#   4. the job server with GPU workers only: one prove job, which must run on gpu0 and verify;
#   5. `proofmill bench` on the GPU (MSM, NTT, copies, proofs), then a k=21 aggregation on the
#      GPU, then the same host's CPU (MSM, NTT), then the GPU again copying through pageable
#      memory (PROOFMILL_CUDA_PAGEABLE=1), then the inline-PTX variant (conformance, MSM, NTT).
# The steps run in that order, most valuable first: a call cut short keeps what ran. Each step
# has its own time limit so that one hang cannot eat the others. OUT_DIR receives
# logs.tar.gz (every step's log, refreshed after each step) and the bench reports
# (bench-cuda.*, bench-cpu.*, bench-cuda-pageable.json, bench-cuda-ptx.json): few files, as the device tool brings
# back at most eight. Build first, here:  cargo build --release && cargo test -p proofmill-accel --release
# --no-run; put stripped copies of target/release/proofmill and the `backends` test binary in
# BIN_DIR.
#
# Usage: scripts/gpu-check.sh BIN_DIR OUT_DIR [BENCH_LIMIT_S]
set -u
bin=$(cd "${1:?BIN_DIR}" && pwd)
mkdir -p "${2:?OUT_DIR}"
dest=$(cd "$2" && pwd)
bench_limit=${3:-130}
out=$(mktemp -d)
export PROOFMILL_KERNEL_CACHE=/tmp/proofmill-kernels
export PROOFMILL_DATA_DIR=/tmp/proofmill-data

# NVRTC: the CUDA toolkit's own copy matches the driver; a newer one emits PTX it rejects.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then
    export PROOFMILL_NVRTC_LIB_DIR=$d
    break
  fi
done
if [ -z "${PROOFMILL_NVRTC_LIB_DIR:-}" ]; then
  found=$(find /usr /opt -name 'libnvrtc.so*' 2>/dev/null | head -n 1)
  [ -n "$found" ] && export PROOFMILL_NVRTC_LIB_DIR=$(dirname "$found")
fi

step() {
  local name=$1 limit=$2
  shift 2
  local start rc
  start=$(date +%s)
  echo "=== $name (limit ${limit}s)"
  timeout -k 5 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "=== $name: exit $rc after $(($(date +%s) - start))s"
  grep -E "MISMATCH|FAILED|panicked|error|Error|SKIPPED" "$out/$name.log" | head -n 8
  tar -czf "$dest/logs.tar.gz" -C "$out" .
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
  echo "PROOFMILL_NVRTC_LIB_DIR=${PROOFMILL_NVRTC_LIB_DIR:-<none>}"
  ls -la "${PROOFMILL_NVRTC_LIB_DIR:-/nonexistent}"/libnvrtc* 2>&1
  nproc
  free -g
} >"$out/env.log" 2>&1
cat "$out/env.log"

step devices 30 "$bin/proofmill" devices
cat "$out/devices.log"
PROOFMILL_REQUIRE_GPU=1 step backends 45 "$bin/backends" --test-threads 1
grep -E "^test |test result" "$out/backends.log"
step selftest 120 "$bin/proofmill" selftest --max-log 24
grep -vE "^\s*$" "$out/selftest.log" | tail -n 45
# The server with GPU workers only: one job, which must run on gpu0 and verify.
serve_check() {
  local dir port=18080 id status i
  dir=$(mktemp -d)
  printf 'cpu_workers = 0\ndata_dir = "%s"\ndatabase = "%s/jobs.db"\n' "$PROOFMILL_DATA_DIR" "$dir" >"$dir/config.toml"
  "$bin/proofmill" serve --config "$dir/config.toml" --listen "127.0.0.1:$port" >"$out/serve-server.log" 2>&1 &
  local server=$!
  for i in $(seq 1 60); do
    curl -sf "localhost:$port/healthz" >/dev/null && break
    if ! kill -0 "$server" 2>/dev/null; then
      echo "the server exited:"; tail -n 5 "$out/serve-server.log"; return 1
    fi
    sleep 1
  done
  curl -s "localhost:$port/v1/devices"; echo
  "$bin/proofmill" example-batch --circuit transfer_batch/d16-b8 --out "$dir/b.json" || return 1
  printf '{"type":"prove","circuit":"transfer_batch/d16-b8","input":%s}' "$(cat "$dir/b.json")" >"$dir/job.json"
  id=$(curl -s -d @"$dir/job.json" "localhost:$port/v1/jobs" | sed -E 's/.*"id":"([^"]+)".*/\1/')
  for i in $(seq 1 90); do
    status=$(curl -s "localhost:$port/v1/jobs/$id")
    echo "$status" | grep -q '"status":"\(succeeded\|failed\|cancelled\)"' && break
    sleep 1
  done
  echo "$status"
  curl -s "localhost:$port/v1/jobs/$id/proof" >"$dir/p.json"
  printf '{"proof":%s}' "$(cat "$dir/p.json")" | curl -s -d @- "localhost:$port/v1/verify"; echo
  kill "$server"; wait "$server"
  echo "$status" | grep -q '"device":"gpu0"' && echo "$status" | grep -q '"status":"succeeded"'
}
export -f serve_check
export bin out
step serve 120 bash -c serve_check
tail -n 4 "$out/serve.log"

step bench-cuda "$bench_limit" "$bin/proofmill" bench --device cuda --no-aggregate \
  --circuits transfer_batch/d16-b8,transfer_batch/d16-b32 --proof-reps 1 \
  --json "$dest/bench-cuda.json" --markdown "$dest/bench-cuda.md"
grep -E "^  cuda" "$out/bench-cuda.log" | grep -v "device->host\|host->device" | tail -n 25
# Aggregation on the GPU: two consecutive d16-b8 proofs, then one k=21 aggregate. Its SRS and
# keys are made on first use, inside the timed aggregate (the log's stage lines split them).
aggregate_check() {
  local dir
  dir=$(mktemp -d)
  "$bin/proofmill" example-batch --circuit transfer_batch/d16-b8 --count 2 --out "$dir/b.json" || return 1
  # GPU memory in use, sampled every 100 ms while each command runs, against the prover's
  # formula (memory.gpu_bytes of `proofmill circuits --json`; the CUDA context itself, a few
  # hundred MiB, comes on top of it).
  gpu_peak() {
    local log rc
    log=$(mktemp)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$log" 2>/dev/null &
    local sampler=$!
    "$@"
    rc=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    echo "GPU memory used, peak: $(sort -n "$log" | tail -n 1) MiB ($(head -n 1 "$log") MiB before)"
    return $rc
  }
  "$bin/proofmill" circuits --json --no-keys | grep -A4 '"memory"' | head -n 5
  for i in 1 2; do
    gpu_peak "$bin/proofmill" --backend cuda prove --circuit transfer_batch/d16-b8 --input "$dir/b-$i.json" \
      --out "$dir/p-$i.json" || return 1
  done
  local start
  start=$(date +%s%N)
  gpu_peak "$bin/proofmill" --backend cuda aggregate "$dir/p-1.json" "$dir/p-2.json" --out "$dir/agg.json" || return 1
  echo "aggregation on the GPU, SRS and keys included: $((($(date +%s%N) - start) / 1000000)) ms (formula: 3.6 GB of GPU memory, docs/operations.md)"
}
export -f aggregate_check
step aggregate "${AGGREGATE_LIMIT:-200}" bash -c aggregate_check
grep "GPU memory used" "$out/aggregate.log"
tail -n 3 "$out/aggregate.log"

step bench-cpu 60 "$bin/proofmill" bench --device cpu --no-prove \
  --json "$dest/bench-cpu.json" --markdown "$dest/bench-cpu.md"
grep -E "^  cpu" "$out/bench-cpu.log" | tail -n 12
# The same MSM, NTT and copies through pageable memory (the path before page-locked staging).
PROOFMILL_CUDA_PAGEABLE=1 step bench-pageable 50 "$bin/proofmill" bench --device cuda --no-prove \
  --json "$dest/bench-cuda-pageable.json"
grep -E "^  cuda:0" "$out/bench-pageable.log" | tail -n 20
# The inline-PTX variant of the field arithmetic (PROOFMILL_CUDA_PTX=1): conformance, then
# MSM and NTT when it passed.
PROOFMILL_CUDA_PTX=1 PROOFMILL_REQUIRE_GPU=1 step backends-ptx 45 "$bin/backends" --test-threads 1
grep -E "^test |test result" "$out/backends-ptx.log"
if grep -q "test result: ok" "$out/backends-ptx.log"; then
  PROOFMILL_CUDA_PTX=1 step bench-cuda-ptx 50 "$bin/proofmill" bench --device cuda --no-prove \
    --json "$dest/bench-cuda-ptx.json"
  grep -E "^  cuda:0 (MSM|NTT)" "$out/bench-cuda-ptx.log"
fi

