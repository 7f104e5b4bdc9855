#!/usr/bin/env bash
# Installs rkt's files into DESTDIR, laid out as a distribution installs them; the Debian and
# RPM builds both call it, so the two packages hold the same files.
#
# Usage: packaging/install.sh DESTDIR BUILD_DIR ZSH_COMPLETIONS_DIR [UNIT_DIR]
#   BUILD_DIR: where cargo left rkt, rkt-stage1 and rkt-pod-generator (target/release)
#   ZSH_COMPLETIONS_DIR: /usr/share/zsh/vendor-completions (Debian), .../site-functions (Fedora)
#   UNIT_DIR: /usr/lib/systemd/system (default); Debian 12's debhelper and systemd packages
#     keep units in /lib/systemd/system, the same directory on a merged-/usr system
set -euo pipefail
dest=${1:?usage: install.sh DESTDIR BUILD_DIR ZSH_COMPLETIONS_DIR}
build=${2:?usage: install.sh DESTDIR BUILD_DIR ZSH_COMPLETIONS_DIR}
zsh_dir=${3:?usage: install.sh DESTDIR BUILD_DIR ZSH_COMPLETIONS_DIR}
unit_dir=${4:-/usr/lib/systemd/system}
src=$(cd "$(dirname "$0")/.." && pwd)

install -D -m 0755 "$build/rkt" "$dest/usr/bin/rkt"
install -D -m 0755 "$build/rkt-stage1" "$dest/usr/lib/rkt/rkt-stage1"
install -D -m 0755 "$build/rkt-pod-generator" "$dest/usr/lib/systemd/system-generators/rkt-pod-generator"

for unit in rkt-gc.service rkt-gc.timer rkt-metadata.service rkt-metadata.socket; do
  install -D -m 0644 "$src/units/$unit" "$dest$unit_dir/$unit"
done
install -D -m 0644 "$src/packaging/preset/80-rkt.preset" "$dest/usr/lib/systemd/system-preset/80-rkt.preset"
install -D -m 0644 "$src/packaging/tmpfiles.d/rkt.conf" "$dest/usr/lib/tmpfiles.d/rkt.conf"
install -D -m 0644 "$src/packaging/sysusers.d/rkt.conf" "$dest/usr/lib/sysusers.d/rkt.conf"

# Manual pages and completions, from the clap definitions of the rkt just built.
man=$(mktemp -d)
trap 'rm -rf "$man"' EXIT
"$build/rkt" completion --man-pages "$man"
install -d "$dest/usr/share/man/man1"
install -m 0644 "$man"/*.1 "$dest/usr/share/man/man1/"
install -d "$dest/usr/share/bash-completion/completions" "$dest$zsh_dir" \
  "$dest/usr/share/fish/vendor_completions.d"
"$build/rkt" completion bash >"$dest/usr/share/bash-completion/completions/rkt"
"$build/rkt" completion zsh >"$dest$zsh_dir/_rkt"
"$build/rkt" completion fish >"$dest/usr/share/fish/vendor_completions.d/rkt.fish"
chmod 0644 "$dest/usr/share/bash-completion/completions/rkt" "$dest$zsh_dir/_rkt" \
  "$dest/usr/share/fish/vendor_completions.d/rkt.fish"
