#!/usr/bin/env bash
# Registry fetch speed: `rkt fetch docker://127.0.0.1:PORT/…` of a ~100 MB image with a few
# layers from Debian's docker-registry on loopback, against `skopeo copy` of the same image
# into a local `dir:`, in one run. Both write to the same tmpfs, both check every blob's
# digest and store the blobs as fetched. Goal: ratio rkt/skopeo <= 1 (not slower).
#
# rkt unpacks an OCI image's layers at its first use, not at fetch, so a second pair measures
# the whole way to a root filesystem: `rkt fetch` + `rkt image render` (the same layer
# application a first `rkt run` does) against `skopeo copy … oci:` + `umoci raw unpack`.
#
# --throttle BYTES_PER_S puts a proxy in front of the registry that limits each connection's
# download rate (one TCP stream over a WAN), where downloading layers in parallel pays.
#
# Usage: bench/fetch-registry.sh [--runs N] [--throttle BYTES_PER_S]   (root; default 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
throttle=
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --throttle) throttle=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--throttle BYTES_PER_S]" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "bench/fetch-registry.sh: run as root (images keep their owners)" >&2; exit 1; }
need=()
for tool in hyperfine docker-registry skopeo umoci; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release -q -p rkt
rkt=${CARGO_TARGET_DIR:-$PWD/target}/release/rkt

work=$(mktemp -d /tmp/rkt-bench.XXXXXX)
mount -t tmpfs -o size=2G tmpfs "$work"
registry_pid=
proxy_pid=
# Each step may fail (a registry killed makes `wait` return 143) without skipping the unmount:
# under set -e a failing last command would end the trap there and leave the tmpfs mounted.
cleanup() {
  if [[ -n $proxy_pid ]]; then kill "$proxy_pid" 2>/dev/null || true; fi
  if [[ -n $registry_pid ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  umount -l "$work" || true
  rmdir "$work" || true
}
trap cleanup EXIT

# An image of real files: three layers of roughly 60, 30 and 10 MB (uncompressed).
layer() { # name, size cap in MB, source dir: regular files under it, in name order, up to the cap
  local name=$1 cap=$2 src=$3
  python3 - "$cap" "$src" "$work/$name" <<'PY'
import os, shutil, sys
cap, src, out = int(sys.argv[1]) << 20, sys.argv[2], sys.argv[3]
total = 0
for root, dirs, files in os.walk(src):
    dirs.sort()
    for f in sorted(files):
        path = os.path.join(root, f)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        size = os.path.getsize(path)
        if size > 4 << 20:
            continue
        if total + size > cap:
            sys.exit(0)
        dest = os.path.join(out, os.path.relpath(path, "/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(path, dest)
        total += size
PY
  tar -C "$work/$name" -cf "$work/$name.tar" .
  umoci raw add-layer --image "$work/layout:bench" "$work/$name.tar"
}
umoci init --layout "$work/layout"
umoci new --image "$work/layout:bench"
layer l1 60 /usr/lib/x86_64-linux-gnu
layer l2 30 /usr/share
layer l3 10 /usr/bin
umoci config --image "$work/layout:bench" --config.entrypoint /usr/bin/true

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://127.0.0.1:$port/bench/app:1"
if [[ -n $throttle ]]; then
  proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 - "$proxy_port" "$port" "$throttle" <<'PY' &
import socket, sys, threading, time
listen, target, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def pipe(src, dst, limited):
    start, sent = time.monotonic(), 0
    try:
        while data := src.recv(65536):
            dst.sendall(data)
            if limited:
                sent += len(data)
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def handle(client):
    server = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pipe, args=(client, server, False), daemon=True).start()
    pipe(server, client, True)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", listen))
s.listen(64)
while True:
    threading.Thread(target=handle, args=(s.accept()[0],), daemon=True).start()
PY
  proxy_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$proxy_port) 2>/dev/null && break; sleep 0.1; done
  port=$proxy_port
  echo "throttled to $throttle bytes/s per connection"
fi
ref=127.0.0.1:$port/bench/app:1
echo "image: $(du -sh --apparent-size "$work/registry" | cut -f1) in the registry, $(du -sh "$work"/l1 "$work"/l2 "$work"/l3 | awk '{print $1}' | paste -sd+) unpacked layers"

fetch="$rkt --dir $work/store --insecure-options=http,image fetch docker://$ref"
hyperfine --runs "$runs" --warmup 1 \
  --prepare "rm -rf $work/store $work/dir $work/oci $work/tree; sync" \
  -n "rkt fetch" "$fetch" \
  -n "skopeo copy" "skopeo copy -q --src-tls-verify=false docker://$ref dir:$work/dir" \
  -n "rkt fetch + render" "id=\$($fetch) && $rkt --dir $work/store image render \$id $work/tree" \
  -n "skopeo copy + umoci unpack" "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/oci:x && umoci raw unpack --image $work/oci:x $work/tree" \
  --export-json "$work/result.json"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
rkt, sk = r["rkt fetch"], r["skopeo copy"]
print(f"rkt fetch {rkt:.2f} s, skopeo copy {sk:.2f} s: ratio rkt/skopeo = {rkt / sk:.2f} (goal <= 1)")
rkt, sk = r["rkt fetch + render"], r["skopeo copy + umoci unpack"]
print(f"to a root filesystem: rkt fetch + render {rkt:.2f} s, skopeo copy + umoci unpack {sk:.2f} s: ratio {rkt / sk:.2f}")
PY
