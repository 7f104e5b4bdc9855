#!/usr/bin/env bash
# Pod start time, in one run on the same machine:
#   rkt run of /bin/true (image already fetched)        vs
#   systemd-run --wait systemd-nspawn --as-pid2 … /bin/true on the same root filesystem, and
#   podman run --rm --rootfs … /bin/true on it too (the peer users compare rkt with)
# and rkt run of a ~500 MB image against a ~1 MB one (overlays: size should not matter).
# Goals: rkt/nspawn ≤ 2 (aim 1.5); rkt/podman ≤ 1; big/small ≤ 1.1. The rkt rows but one use
# --net=host, the network bare nspawn and podman get here; the other shows what rkt's default
# private network (CNI ptp) adds.
# --baseline TREE adds `rkt run` of another build (TREE/target/release/rkt and its stage1, built
# beforehand, e.g. an earlier commit in a git worktree), for a same-run A/B: ratio this/baseline.
#
# Needs systemd as PID 1; where it is not, runs itself in a throwaway systemd booted in
# namespaces (tests/system/in-systemd.sh), as the system tests do.
# Usage: bench/run.sh [--runs N] [--big-mb N] [--baseline TREE]     (root)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=10 big_mb=500 baseline=
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --big-mb) big_mb=$2; shift 2 ;;
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--runs N] [--big-mb N] [--baseline TREE]" >&2; exit 2 ;;
  esac
done

if [[ ${RKT_BENCH_INNER:-} != 1 ]]; then
  [[ $EUID -eq 0 ]] || { echo "bench/run.sh: run as root" >&2; exit 1; }
  need=()
  for p in hyperfine systemd-container busybox-static podman runc; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  cargo build -q --release -p rkt -p rkt-stage1
  if [[ -n $baseline && ! -x $baseline/target/release/rkt-stage1 ]]; then
    echo "bench/run.sh: no release build in $baseline (cargo build --release -p rkt -p rkt-stage1 there)" >&2
    exit 1
  fi
  tests/images/build.sh --big-mb "$big_mb" target/bench-images >/dev/null
  [[ $(cat /proc/1/comm) == systemd ]] ||
    echo "(running in a throwaway systemd booted in namespaces: PID 1 is not systemd here)"
  exec tests/system/in-systemd.sh env RKT_BENCH_INNER=1 "$repo/bench/run.sh" --runs "$runs" --big-mb "$big_mb" \
    ${baseline:+--baseline "$baseline"}
fi

rkt=$repo/target/release/rkt
work=$(mktemp -d /tmp/rkt-bench.XXXXXX)
dir=$work/store
"$rkt" --dir "$dir" --insecure-options=image fetch target/bench-images/true.aci >/dev/null
"$rkt" --dir "$dir" --insecure-options=image fetch target/bench-images/big.aci >/dev/null
"$rkt" --dir "$dir" image render example.com/true "$work/rootfs"
# nspawn wants something that looks like an OS tree.
mkdir -p "$work/rootfs/usr"
"$rkt" --dir "$dir" image list
ab=()
if [[ -n $baseline ]]; then
  base=$baseline/target/release/rkt base_dir=$work/baseline-store
  "$base" --dir "$base_dir" --insecure-options=image fetch target/bench-images/true.aci >/dev/null
  ab=(--prepare "$base --dir $base_dir gc --grace-period=0s >/dev/null" -n "baseline rkt run (1 MB image)"
    "$base --dir $base_dir run --net=host example.com/true")
fi

# podman with its own storage in $work, on the same root filesystem. Debian's default runtime,
# crun, refuses hosts with cgroup v1 controllers mounted (hybrid); runc is used there. The
# limits are given because podman's defaults (1M open files) may exceed what a container host
# lets it set.
podman="podman --root $work/podman --runroot $work/podman-run --events-backend=file"
podman_run="run --rm --network=host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs $work/rootfs /bin/true"
runtime=crun
if ! $podman --runtime crun $podman_run >/dev/null 2>&1; then
  runtime=runc
  $podman --runtime runc $podman_run >/dev/null || { echo "bench/run.sh: podman cannot run here" >&2; exit 1; }
fi
echo "podman $(podman --version | awk '{print $3}') with $runtime"

gc="$rkt --dir $dir gc --grace-period=0s >/dev/null"
hyperfine --runs "$runs" --warmup 2 --export-json "$work/result.json" \
  --prepare "$gc" -n "rkt run (1 MB image)" "$rkt --dir $dir run --net=host example.com/true" \
  --prepare "$gc" -n "rkt run (big image)" "$rkt --dir $dir run --net=host example.com/big" \
  --prepare "$gc" -n "rkt run (default network)" "$rkt --dir $dir run example.com/true" \
  --prepare "true" -n "systemd-nspawn --as-pid2" \
  "systemd-run --wait --quiet systemd-nspawn --quiet --register=no --as-pid2 -D $work/rootfs /bin/true" \
  --prepare "true" -n "podman run" "$podman --runtime $runtime $podman_run" "${ab[@]}"

BIG_MB=$big_mb python3 - "$work/result.json" <<'PY'
import json, os, sys
big_mb = os.environ["BIG_MB"]
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
small, big, nspawn = r["rkt run (1 MB image)"], r["rkt run (big image)"], r["systemd-nspawn --as-pid2"]
print(f"rkt run {small*1000:.0f} ms, bare nspawn {nspawn*1000:.0f} ms: ratio rkt/nspawn = {small/nspawn:.2f} (goal <= 2, aim 1.5)")
podman = r["podman run"]
print(f"rkt run {small*1000:.0f} ms, podman run {podman*1000:.0f} ms: ratio rkt/podman = {small/podman:.2f} (goal <= 1)")
net = r["rkt run (default network)"]
print(f"with the default network {net*1000:.0f} ms: ratio default/host = {net/small:.2f}")
if "baseline rkt run (1 MB image)" in r:
    base = r["baseline rkt run (1 MB image)"]
    print(f"rkt run {small*1000:.0f} ms, baseline build {base*1000:.0f} ms: ratio this/baseline = {small/base:.2f}")
print(f"{big_mb} MB image {big*1000:.0f} ms vs 1 MB image {small*1000:.0f} ms: ratio = {big/small:.2f} (goal <= 1.1)")
PY
"$rkt" --dir "$dir" gc --grace-period=0s >/dev/null
rm -rf "$work"
