#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): build rkt and the bundled example
# image (busybox saying hello), then run it as a pod: fetch, run (rkt run prints the app's
# output), show the same output in the journal, list it, and clean up.
#
# Pods need systemd as the host's PID 1. Where it is not (containers, CI sandboxes), this
# script boots a throwaway systemd in namespaces (tests/system/in-systemd.sh) and runs the
# demo inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [[ ${RKT_EXAMPLE_INNER:-} != 1 ]]; then
  need=()
  for p in busybox-static systemd-container containernetworking-plugins iptables; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  cargo build -q -p rkt -p rkt-stage1
  tests/images/build.sh target/test-images >/dev/null
  [[ $(cat /proc/1/comm) == systemd ]] ||
    echo "(PID 1 is not systemd here: running the demo in a throwaway systemd booted in namespaces)"
  exec tests/system/in-systemd.sh env RKT_EXAMPLE_INNER=1 "$repo/examples/run.sh"
fi

rkt=$repo/target/debug/rkt
dir=$(mktemp -d /tmp/rkt-example.XXXXXX)
show() { echo "+ rkt $*"; "$rkt" --dir "$dir" "$@"; }
show --insecure-options=image fetch "$repo/target/test-images/hello.aci"
show image list
show run --uuid-file-save "$dir/uuid" example.com/hello
echo "+ journalctl -m -t hello -o cat"
journalctl -m -t hello -o cat --no-pager | tail -n 3
show list
show status "$(cat "$dir/uuid")"
show gc --grace-period=0s
rm -rf "$dir"
