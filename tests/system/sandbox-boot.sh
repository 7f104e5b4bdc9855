#!/usr/bin/env bash
# Boots a throwaway systemd as PID 1 in new pid, mount and uts namespaces, for the system tests
# on machines whose PID 1 is not systemd.
#
# It boots on an overlay of the host root (lower: /, upper: a tmpfs), because systemd's early
# services (tmpfiles, sysusers) would otherwise clean the host's /tmp and edit /etc/passwd.
# /tmp and /run are fresh tmpfs; each SHARE dir (the checkout) is bound in read-write at the
# same path. Everything lives in the new mount namespace and disappears with its last process.
#
# Usage: sandbox-boot.sh STATE_DIR [SHARE_DIR...]
#   STATE_DIR/pid          host PID of the sandbox's systemd (nsenter -t PID -m -p -u)
#   STATE_DIR/unshare.pid  host PID of the unshare process (kill it and the sandbox ends)
#   STATE_DIR/console.log  systemd's console output
set -euo pipefail
state=$(realpath -m "${1:?usage: sandbox-boot.sh STATE_DIR [SHARE_DIR...]}")
shift
if [[ ${RKT_SANDBOX_INNER:-} != 1 ]]; then
  mkdir -p "$state"
  RKT_SANDBOX_INNER=1 unshare --pid --fork --mount --uts --propagation private \
    "$0" "$state" "$@" >"$state/console.log" 2>&1 </dev/null &
  echo $! >"$state/unshare.pid"
  # The first child of unshare is the script, which execs systemd: that is PID 1 inside.
  for _ in $(seq 200); do
    pid=$(pgrep -P "$!" || true)
    [[ -n $pid ]] && break
    sleep 0.05
  done
  [[ -n ${pid:-} ]] || { echo "sandbox-boot: unshare started no process" >&2; cat "$state/console.log" >&2; exit 1; }
  echo "$pid" >"$state/pid"
  exit 0
fi

w=$state/ovl
mkdir -p "$w"
mount -t tmpfs -o mode=0755 tmpfs "$w"
mkdir -p "$w"/{upper,work,root}
mount -t overlay overlay -o lowerdir=/,upperdir="$w/upper",workdir="$w/work" "$w/root"
r=$w/root
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
mkdir -p "$r/run/systemd/system" "$r/run/lock"
# Servers that Debian enables on install but the tests start themselves, on ports they choose;
# and one they never use, which would wait for its port while another sandbox holds it (the
# sandboxes share the host's network).
for unit in nginx.service docker-registry.service postgresql.service postgresql@.service; do
  ln -sf /dev/null "$r/run/systemd/system/$unit"
done
for share in "$@"; do
  mkdir -p "$r$share"
  mount --bind "$share" "$r$share"
done
cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
hostname rkt-systest
exec env -i container=other PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --system --unit=multi-user.target --log-target=console
