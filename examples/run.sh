#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): build rkt, build the bundled example
# image (busybox), fetch it into a throwaway store and show what rkt knows about it.
# Until the pods issue lands, rkt stores images but does not run them yet.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
cargo build -q -p rkt
rkt=$PWD/target/debug/rkt
dir=${RKT_EXAMPLE_DIR:-$PWD/target/example-store}
tests/images/build.sh target/test-images >/dev/null

echo "+ rkt --dir $dir --insecure-options=image fetch target/test-images/busybox.aci"
"$rkt" --dir "$dir" --insecure-options=image fetch target/test-images/busybox.aci
echo "+ rkt --dir $dir image list"
"$rkt" --dir "$dir" image list
echo "+ rkt --dir $dir image cat-manifest example.com/busybox"
"$rkt" --dir "$dir" image cat-manifest example.com/busybox
