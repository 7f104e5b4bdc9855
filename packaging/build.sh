#!/usr/bin/env bash
# Builds rkt's Debian package or RPM into target/packages/, installing the build's own
# dependencies from Debian's packages first (as root). Crates are vendored (cargo vendor) and
# the package build runs offline from them; it shares the workspace's target directory, so a
# package build after a build of the workspace is incremental.
#
# Usage: packaging/build.sh deb|rpm
#   deb: dpkg-buildpackage -us -uc -b (debhelper 13), then lintian, which must report no error
#        and no warning
#   rpm: rpmbuild -bb packaging/rpm/rkt.spec (Debian's rpm; build dependencies are not checked,
#        as Debian's rpm database does not know Debian's packages)
set -euo pipefail
kind=${1:-}
[[ $kind == deb || $kind == rpm ]] || { echo "usage: packaging/build.sh deb|rpm" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/packages
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)

case $kind in
  deb) needed=(debhelper dpkg-dev lintian fakeroot) ;;
  rpm) needed=(rpm) ;;
esac
missing=()
for p in "${needed[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $EUID -eq 0 ]] || { echo "build.sh: needs ${missing[*]} (run as root to install them)" >&2; exit 1; }
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "build.sh: cargo is missing (install Rust with rustup)" >&2; exit 1; }

# Vendored crates: the package build reads no registry.
mkdir -p "$out"
cargo vendor --quiet --locked --manifest-path "$repo/Cargo.toml" "$out/vendor" >/dev/null
cat >"$out/vendor.toml" <<EOF
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "$out/vendor"
EOF
export RKT_CARGO_CONFIG=$out/vendor.toml

# A source tree whose parent is ours (dpkg-buildpackage writes its results next to the tree):
# links to the checkout's directories, copies of its top-level files (a link would be packaged
# as a link), and debian/ copied, since debhelper writes into it.
stage=$out/build/rkt-$version
rm -rf "$out/build"
mkdir -p "$stage"
for entry in "$repo"/* "$repo"/.cargo; do
  name=$(basename "$entry")
  [[ -e $entry && $name != target ]] || continue
  if [[ -d $entry ]]; then ln -s "$entry" "$stage/$name"; else cp -a "$entry" "$stage/$name"; fi
done
cp -a "$repo/packaging/debian" "$stage/debian"

case $kind in
  deb)
    (cd "$stage" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
      tail -n 40 "$out/build.log" >&2
      echo "build.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
      exit 1
    }
    rm -f "$out"/rkt_*.deb "$out"/rkt-dbgsym_*.deb
    mv "$out"/build/*.deb "$out/"
    deb=$(ls "$out"/rkt_"$version"_*.deb)
    echo "built $deb ($(du -k "$deb" | cut -f1) KiB)"
    # Tags at warning level or above fail the build; overrides (with their reasons) are in
    # packaging/debian/rkt.lintian-overrides.
    lintian --fail-on error,warning --display-info "$deb"
    echo "lintian: no error, no warning"
    ;;
  rpm)
    # The C code of vendored crates (ring, zstd, liblzma) gets Debian's hardening flags as in
    # the .deb, so that one build of target/release serves both packages.
    # (From the build tree: the flags map its path away, -ffile-prefix-map.)
    eval "$(cd "$stage" && dpkg-buildflags --export=sh)"
    top=$out/build/rpmbuild
    (cd "$stage" && rpmbuild -bb --nodeps --build-in-place \
      --define "_topdir $top" \
      --define "rkt_version $version" \
      --define "cargo $(command -v cargo)" \
      --define "cargo_target_dir $CARGO_TARGET_DIR" \
      --define "cargo_config $RKT_CARGO_CONFIG" \
      packaging/rpm/rkt.spec >"$out/build.log" 2>&1) || {
      tail -n 40 "$out/build.log" >&2
      echo "build.sh: rpmbuild failed; the whole log is $out/build.log" >&2
      exit 1
    }
    rm -f "$out"/rkt-*.rpm
    mv "$top"/RPMS/*/rkt-*.rpm "$out/"
    for rpm in "$out"/rkt-*.rpm; do echo "built $rpm ($(du -k "$rpm" | cut -f1) KiB)"; done
    ;;
esac
