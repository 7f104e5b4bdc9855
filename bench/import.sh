#!/usr/bin/env bash
# Import speed: `rkt fetch` of a large gzip ACI against the shell pipeline that does the same
# work (decompress, hash the tar, unpack it), on the same file, in one run:
#
#     gzip -dc big.aci | tee >(sha512sum) | tar -x
#
# Both write to the same tmpfs (disk timings here are too noisy to compare). rkt does more
# than the pipeline: it also keeps a copy of the ACI, checks the layout and the manifest, and
# syncs before the image becomes visible. Goal: ratio < 1 (faster than the pipeline).
#
# --baseline TREE adds `rkt fetch` of another build (TREE/target/release/rkt, built beforehand),
# for a same-run A/B: ratio this/baseline.
#
# Usage: bench/import.sh [--mb N] [--runs N] [--baseline TREE]      (root; default 500 MB, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=500 runs=3 baseline=
while [[ $# -gt 0 ]]; do
  case $1 in
    --mb) mb=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--mb N] [--runs N] [--baseline TREE]" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "bench/import.sh: run as root (images keep their owners)" >&2; exit 1; }
for tool in hyperfine gzip tar sha512sum; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; break; }
done

cargo build --release -q -p rkt
rkt=$PWD/target/release/rkt

work=$(mktemp -d /tmp/rkt-bench.XXXXXX)
mount -t tmpfs -o size=$((mb * 5 + 512))M tmpfs "$work"
trap 'umount -l "$work"; rmdir "$work"' EXIT

tests/images/build.sh --big-mb "$mb" "$work/img" >/dev/null
aci=$work/img/big.aci
ab=()
if [[ -n $baseline ]]; then
  [[ -x $baseline/target/release/rkt ]] || { echo "bench/import.sh: no release build in $baseline" >&2; exit 1; }
  ab=(-n "baseline rkt fetch" "$baseline/target/release/rkt --dir $work/store --insecure-options=image fetch $aci")
fi
echo "image: $(du -h "$aci" | cut -f1) gzip, $(gzip -dc "$aci" | wc -c | numfmt --to=iec) tar, $(gzip -dc "$aci" | tar -t | wc -l) entries"

# The two must agree on what they compute.
want="sha512-$(gzip -dc "$aci" | sha512sum | cut -d' ' -f1)"
got=$("$rkt" --dir "$work/check" --insecure-options=image fetch "$aci")
[[ $got == "$want" ]] || { echo "rkt's image ID $got differs from the pipeline's $want" >&2; exit 1; }
rm -rf "$work/check"

hyperfine --shell bash --runs "$runs" --warmup 1 \
  --prepare "rm -rf $work/store $work/tar; mkdir $work/tar; sync" \
  -n "rkt fetch" "$rkt --dir $work/store --insecure-options=image fetch $aci" \
  -n "gzip|tee sha512sum|tar" "gzip -dc $aci | tee >(sha512sum >/dev/null) | tar -x -C $work/tar" \
  "${ab[@]}" --export-json "$work/result.json"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
rkt, pipe = r["rkt fetch"]["mean"], r["gzip|tee sha512sum|tar"]["mean"]
if "baseline rkt fetch" in r:
    base = r["baseline rkt fetch"]["mean"]
    print(f"rkt fetch {rkt:.2f} s, baseline build {base:.2f} s: ratio this/baseline = {rkt / base:.2f}")
print(f"rkt fetch {rkt:.2f} s, pipeline {pipe:.2f} s: ratio rkt/pipeline = {rkt / pipe:.2f} (goal < 1)")
PY
