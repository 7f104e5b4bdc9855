#!/usr/bin/env bash
# Runs a command where a real systemd is PID 1: here, when this host's PID 1 is systemd;
# otherwise inside a throwaway systemd booted in namespaces by sandbox-boot.sh (the checkout
# shared read-write at its own path), once that systemd is up. The sandbox and everything in
# it end with the command. The command sees RKT_IN_SYSTEMD=1.
#
# Usage: tests/system/in-systemd.sh COMMAND [ARG...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -gt 0 ]] || { echo "usage: in-systemd.sh COMMAND [ARG...]" >&2; exit 2; }
if [[ $(cat /proc/1/comm) == systemd ]]; then
  exec env RKT_IN_SYSTEMD=1 "$@"
fi
state=$(mktemp -d)
"$here/sandbox-boot.sh" "$state" "$repo"
pid=$(cat "$state/pid")
trap 'kill -KILL "$(cat "$state/unshare.pid")" "$pid" 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 300); do
  s=$(nsenter -t "$pid" -m -p -u systemctl is-system-running 2>/dev/null || true)
  [[ $s == running || $s == degraded ]] && break
  sleep 0.1
done
[[ $s == running || $s == degraded ]] || { echo "in-systemd: the sandbox's systemd did not come up ($s)" >&2; exit 1; }
nsenter -t "$pid" -m -p -u --wd="$PWD" env RKT_IN_SYSTEMD=1 "$@"
