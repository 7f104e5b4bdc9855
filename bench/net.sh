#!/usr/bin/env bash
# rkt run start time per network mode (host, none, a CNI bridge .conf, the built-in default
# network, default with --port, none with --sysctl), in a throwaway systemd, with hyperfine.
# Usage: bench/net.sh (from a checkout with target/debug and target/test-images built)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${INNER:-} != 1 ]]; then
  exec "$repo/tests/system/in-systemd.sh" env INNER=1 "$repo/bench/net.sh"
fi
rkt=$repo/target/debug/rkt
work=$(mktemp -d /tmp/rkt-netbench.XXXXXX); dir=$work/store
mkdir -p "$work/config/net.d"
printf '{"cniVersion":"0.4.0","name":"bench","type":"bridge","bridge":"rkt-bench0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","subnet":"10.222.34.0/24","dataDir":"%s/ipam"}}' "$work" > "$work/config/net.d/10-bench.conf"
"$rkt" --dir "$dir" --insecure-options=image fetch $repo/target/test-images/true.aci >/dev/null; "$rkt" --dir "$dir" --insecure-options=image fetch $repo/target/test-images/inspect-serve.aci >/dev/null
gc="$rkt --dir $dir gc --grace-period=0s >/dev/null"
r="$rkt --dir $dir --local-config $work/config run"
hyperfine --runs 12 --warmup 2 --export-json "$work/r.json" \
  --prepare "$gc" -n host "$r --net=host example.com/true" \
  --prepare "$gc" -n none "$r --net=none example.com/true" \
  --prepare "$gc" -n cni-bridge "$r --net=bench example.com/true" \
  --prepare "$gc" -n default "$r --net=default example.com/true" \
  --prepare "$gc" -n default-port "$r --net=default --port=http:18090 example.com/inspect-serve --exec=/inspect -- --print-msg hi ---" \
  --prepare "$gc" -n none-sysctl "$r --net=none --sysctl=net.ipv4.ip_unprivileged_port_start=123 example.com/true" 2>&1 | tail -25 || true
python3 - "$work/r.json" <<'PY'
import json,sys
for x in json.load(open(sys.argv[1]))["results"]: print(f'{x["command"]}: mean {x["mean"]*1000:.0f} ms sd {x["stddev"]*1000:.0f} ms')
PY
eval "$gc"; ip link del rkt-bench0 2>/dev/null || true; rm -rf "$work"
