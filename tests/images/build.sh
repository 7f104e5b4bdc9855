#!/usr/bin/env bash
# Builds rkt's test images into OUTDIR:
#   inspect.aci   example.com/inspect: the static `inspect` helper (tests/inspect) as /inspect
#   busybox.aci   example.com/busybox: Debian's busybox-static with its applet links, /bin/sh
#   big.aci       example.com/big (only with --big-mb N): ~N MB of files for benchmarks,
#                 many small ones and some large, half compressible; the same bytes every run
# Usage: tests/images/build.sh [--big-mb N] OUTDIR
set -euo pipefail
cd "$(dirname "$0")/../.."
big_mb=
while [[ $# -gt 1 ]]; do
  case $1 in
    --big-mb) big_mb=$2; shift 2 ;;
    *) break ;;
  esac
done
[[ $# -eq 1 ]] || { echo "usage: $0 [--big-mb N] OUTDIR" >&2; exit 2; }
out=$(realpath -m "$1")
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# manifest NAME EXEC... > file: a valid appc v0.8.11 image manifest.
manifest() {
  local name=$1; shift
  local exec
  exec=$(python3 -c 'import json, sys; print(", ".join(json.dumps(a) for a in sys.argv[1:]))' "$@")
  cat <<JSON
{
  "acKind": "ImageManifest",
  "acVersion": "0.8.11",
  "name": "$name",
  "labels": [
    {"name": "version", "value": "0.1"},
    {"name": "os", "value": "linux"},
    {"name": "arch", "value": "amd64"}
  ],
  "app": {
    "exec": [$exec],
    "user": "0",
    "group": "0"
  },
  "annotations": [
    {"name": "created", "value": "2026-01-01T00:00:00Z"}
  ]
}
JSON
}

# pack DIR OUT: the ACI of a layout directory (manifest + rootfs), deterministic.
pack() {
  tar --numeric-owner --owner=0 --group=0 --xattrs --format=posix --sort=name \
      --mtime='2026-01-01 00:00:00Z' --pax-option=delete=atime,delete=ctime \
      -C "$1" -cf - manifest rootfs | gzip -n -6 > "$2"
}

etc_files() {
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > "$1/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\n' > "$1/etc/group"
}

# inspect: built static, so the image needs no libraries.
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
  cargo build -q --release -p rkt-inspect --target x86_64-unknown-linux-gnu \
  --target-dir target/inspect-static
bin=target/inspect-static/x86_64-unknown-linux-gnu/release/inspect
mkdir -p "$work/inspect/rootfs"
install -m 0755 "$bin" "$work/inspect/rootfs/inspect"
etc_files "$work/inspect/rootfs"
mkdir -p "$work/inspect/rootfs/tmp" && chmod 1777 "$work/inspect/rootfs/tmp"
manifest example.com/inspect /inspect > "$work/inspect/manifest"
pack "$work/inspect" "$out/inspect.aci"
echo "$out/inspect.aci"
# The same binary running fixed commands, for the pod tests:
#   inspect-exit7  prints, leaves a marker in its root, exits 7 after 1 s (so that two apps
#                  started together are alive at once: namespace IDs are reused once freed)
#   inspect-print  prints its namespaces, leaves a marker, exits 0 after 1 s
#   inspect-sleep  says it started, then sleeps (until stopped)
#   inspect-isolated  isolators in its manifest (no-new-privileges, caps, seccomp)
#   inspect-netraw    a capabilities-retain-set with CAP_NET_RAW
variant() {
  local name=$1; shift
  manifest "example.com/$name" /inspect "$@" > "$work/inspect/manifest"
  pack "$work/inspect" "$out/$name.aci"
  echo "$out/$name.aci"
}
variant inspect-exit7 --print-msg "hello from inspect" --print-ns --write-file /marker exit7 --sleep 1 --exit-code 7
variant inspect-print --print-ns --write-file /marker print --sleep 1
variant inspect-sleep --print-msg started --sleep 600
#   inspect-listen  answers one connection on the socket passed to it (socket activation)
variant inspect-listen --answer-listen-fd "hello through the caller's socket"
#   inspect-net    prints what it sees of the network: namespace, interfaces, hostname, the
#                  resolver and hosts files rkt wrote into its /etc
variant inspect-net --print-netns --print-net-devs --print-addrs --print-hostname \
  --read-file /etc/resolv.conf --read-file /etc/hosts

# inspect-serve: declares port "http" (tcp 8080) and answers on it for up to 60 s; prints its
# addresses first.
manifest example.com/inspect-serve /inspect --print-addrs --serve-tcp 8080 hello-through-port 60 \
  > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["app"]["ports"] = [{"name": "http", "protocol": "tcp", "port": 8080}]
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-serve.aci"
echo "$out/inspect-serve.aci"

# inspect-isolated: isolators in the image manifest (no-new-privileges, a capability removed,
# a syscall refused with ENOTTY); prints what it is under.
manifest example.com/inspect-isolated /inspect --print-caps --try-chroot > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["app"]["isolators"] = [
    {"name": "os/linux/no-new-privileges", "value": True},
    {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_CHOWN"]}},
    {"name": "os/linux/seccomp-remove-set", "value": {"set": ["chroot"], "errno": "ENOTTY"}},
]
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-isolated.aci"
echo "$out/inspect-isolated.aci"

# inspect-netraw: an image whose capabilities-retain-set asks for CAP_NET_RAW (not in rkt's
# default set); it tries to open raw sockets.
manifest example.com/inspect-netraw /inspect --print-caps --try-socket inet --try-socket packet \
  > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["app"]["isolators"] = [
    {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]}},
]
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-netraw.aci"
echo "$out/inspect-netraw.aci"

# inspect-notify: an image that says its app speaks sd_notify
# (appc.io/executor/supports-systemd-notify); it says it started, waits 3 s, sends READY=1,
# then sleeps (until stopped).
manifest example.com/inspect-notify /inspect --print-msg started --notify-ready-after 3000 \
  --sleep 600 > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["annotations"].append({"name": "appc.io/executor/supports-systemd-notify", "value": "true"})
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-notify.aci"
echo "$out/inspect-notify.aci"
# inspect-volumes: a mount point (data at /data) and event handlers: pre-start writes
# /prestart before the app, post-stop writes /poststop after it, both in the app's root.
manifest example.com/inspect-volumes /inspect --read-file /prestart > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["app"]["mountPoints"] = [{"name": "data", "path": "/data"}]
m["app"]["eventHandlers"] = [
    {"name": "pre-start", "exec": ["/inspect", "--write-file", "/prestart", "from pre-start"]},
    {"name": "post-stop", "exec": ["/inspect", "--write-file", "/poststop", "from post-stop"]},
]
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-volumes.aci"
echo "$out/inspect-volumes.aci"
# inspect-hostile: /evil is a symlink to an absolute path, as a hostile image would use to
# point a volume's mount at a host directory.
cp -a "$work/inspect" "$work/hostile"
ln -s /tmp "$work/hostile/rootfs/evil"
manifest example.com/inspect-hostile /inspect > "$work/hostile/manifest"
pack "$work/hostile" "$out/inspect-hostile.aci"
echo "$out/inspect-hostile.aci"

# inspect-base / inspect-on-base: an appc dependency. The base holds the helper and no app;
# the image on it holds only a file and an app that runs the base's /inspect.
manifest example.com/inspect-base /inspect > "$work/inspect/manifest"
python3 - "$work/inspect/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); del m["app"]; json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/inspect" "$out/inspect-base.aci"
mkdir -p "$work/on-base/rootfs"
echo "from the top image" > "$work/on-base/rootfs/top"
manifest example.com/inspect-on-base /inspect --read-file /top --read-file /etc/group --exit-code 3 \
  > "$work/on-base/manifest"
python3 - "$work/on-base/manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["dependencies"] = [{"imageName": "example.com/inspect-base", "labels": [{"name": "version", "value": "0.1"}]}]
json.dump(m, open(sys.argv[1], "w"))
PY
pack "$work/on-base" "$out/inspect-on-base.aci"
echo "$out/inspect-base.aci $out/inspect-on-base.aci"

# inspect-oci: the same helper as an OCI image (two gzip layers, the second whiting out a file
# of the first), as an OCI layout directory and as an oci-archive tarball, for `rkt run` of OCI
# images. Entrypoint + Cmd: print, read a file of the second layer, exit 7.
mkdir -p "$work/oci/l1/etc" "$work/oci/l2"
cp -a "$work/inspect/rootfs/." "$work/oci/l1/"
echo "whited out" > "$work/oci/l1/gone"
echo "from the second layer" > "$work/oci/l2/added"
: > "$work/oci/l2/.wh.gone"
python3 - "$work/oci" "$out/inspect-oci" <<'PY'
import gzip, hashlib, io, json, os, shutil, sys, tarfile
work, layout = sys.argv[1], sys.argv[2]
shutil.rmtree(layout, ignore_errors=True)
os.makedirs(f"{layout}/blobs/sha256")
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(f"{layout}/blobs/sha256/{digest}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}
def layer(src):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(src)):
            t.add(os.path.join(src, name), arcname=name, filter=lambda i: (setattr(i, "mtime", 0), setattr(i, "uid", 0), setattr(i, "gid", 0), setattr(i, "uname", ""), setattr(i, "gname", ""), i)[-1])
    tar = raw.getvalue()
    return tar, gzip.compress(tar, mtime=0)
layers, diff_ids = [], []
for name in ("l1", "l2"):
    tar, gz = layer(os.path.join(work, name))
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append(dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **blob(gz)))
config = {"architecture": "amd64", "os": "linux",
          "config": {"Entrypoint": ["/inspect"],
                     "Cmd": ["--print-msg", "hello from an OCI image", "--read-file", "/added", "--exit-code", "7"],
                     "Env": ["FROM_OCI=yes"], "WorkingDir": "/"},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cfg = dict(mediaType="application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode()))
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg, "layers": layers}
m = dict(mediaType="application/vnd.oci.image.manifest.v1+json", **blob(json.dumps(manifest).encode()),
         annotations={"org.opencontainers.image.ref.name": "latest"})
json.dump({"schemaVersion": 2, "manifests": [m]}, open(f"{layout}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{layout}/oci-layout", "w"))
PY
tar -C "$out/inspect-oci" -cf "$out/inspect-oci.tar" oci-layout index.json blobs
echo "$out/inspect-oci.tar"

# busybox
[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 && file -L /bin/busybox | grep -q 'static' \
  || { echo "tests/images/build.sh: needs Debian's busybox-static (apt-get install busybox-static)" >&2; exit 1; }
r=$work/busybox/rootfs
mkdir -p "$r/bin" "$r/tmp" && chmod 1777 "$r/tmp"
install -m 0755 /bin/busybox "$r/bin/busybox"
for applet in sh ls cat echo sleep true false env id mount ps hostname pwd mkdir rm touch wc grep sed head tail; do
  ln -s busybox "$r/bin/$applet"
done
etc_files "$r"
manifest example.com/busybox /bin/sh > "$work/busybox/manifest"
pack "$work/busybox" "$out/busybox.aci"
echo "$out/busybox.aci"
# The bundled example (README's main job): busybox saying hello.
manifest example.com/hello /bin/sh -c \
  'echo "Hello from $AC_APP_NAME, a rkt pod"; echo "I am $(id)"; echo "My root holds: $(ls / | xargs)"' \
  > "$work/busybox/manifest"
pack "$work/busybox" "$out/hello.aci"
echo "$out/hello.aci"
# The smallest useful pod, for start-up benchmarks: /bin/true.
manifest example.com/true /bin/true > "$work/busybox/manifest"
pack "$work/busybox" "$out/true.aci"
echo "$out/true.aci"

# big, for benchmarks
if [[ -n $big_mb ]]; then
  mkdir -p "$work/big/rootfs/bin"
  install -m 0755 /bin/busybox "$work/big/rootfs/bin/busybox"
  ln -s busybox "$work/big/rootfs/bin/true"
  manifest example.com/big /bin/true > "$work/big/manifest"
  python3 - "$work/big/rootfs" "$big_mb" <<'PY'
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261123)
target, total, i = mb << 20, 0, 0
while total < target:
    d = os.path.join(root, f"d{i // 200:04d}")
    os.makedirs(d, exist_ok=True)
    # Mostly small files (like a distribution's /usr), with a large one every 500.
    size = rng.randint(4 << 20, 16 << 20) if i % 500 == 0 else int(rng.expovariate(1 / 24000))
    if i % 2:
        data = rng.randbytes(size)
    else:
        line = b"%d lorem ipsum dolor sit amet, consectetur adipiscing elit\n" % i
        data = (line * (size // len(line) + 1))[:size]
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(data)
    total += size
    i += 1
PY
  pack "$work/big" "$out/big.aci"
  echo "$out/big.aci"
fi
