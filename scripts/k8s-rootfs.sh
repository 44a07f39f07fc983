#!/usr/bin/env bash
# Builds the Debian root filesystem in which the test node agent runs pods
# of `debian*` images (tests/k8s/node/images.yaml: chroot inside the pod's
# mount namespace), with Debian's debootstrap, once:
# ~/.cache/atc/k8s/rootfs/debian-bookworm (or under $ATC_K8S_CACHE). About
# half a minute; needs root and the Debian mirror.
#
# Usage: scripts/k8s-rootfs.sh
set -euo pipefail

cache=${ATC_K8S_CACHE:-$HOME/.cache/atc/k8s}
rootfs=$cache/rootfs
target=$rootfs/debian-bookworm
mirror=${ATC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "k8s-rootfs: $*" >&2; }

# A finished build is moved into place whole, so its shell means it is complete.
if [ -e "$target/usr/bin/sh" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "debootstrap needs root: run as root to build $target"
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$rootfs"
partial=$(mktemp -d "$rootfs/.debian-bookworm.XXXXXX")
log=$rootfs/debian-bookworm.log
say "building $target with debootstrap (log: $log)"
started=$SECONDS
if ! debootstrap --variant=minbase bookworm "$partial" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  # Left in place: a failed debootstrap may leave /proc or /sys mounted in it.
  say "debootstrap failed (above; whole log: $log). Is $mirror reachable? The partial tree stays in $partial"
  exit 1
fi
mv "$partial" "$target"
say "built $target in $((SECONDS - started))s"
