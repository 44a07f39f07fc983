#!/usr/bin/env bash
# Stops a control plane started by scripts/k8s-up.sh DIR and removes DIR.
#
# Usage: scripts/k8s-down.sh [--keep] DIR
#   --keep   stop the processes but keep DIR (its logs, certificates, data)
#
# Only the processes whose pid files are in DIR are stopped, and only while
# their command line still names DIR (a pid may have been reused since).
# DIR is deleted only if k8s-up.sh made it (it holds the mark .atc-k8s) and
# nothing is mounted below it: a bind mount left by a container would make
# the deletion reach whatever it shows.
set -euo pipefail

keep=
if [ "${1:-}" = --keep ]; then keep=1; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 [--keep] DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "k8s-down: no directory $1" >&2; exit 0; }
dir=$(cd "$1" && pwd)
say() { echo "k8s-down: $*" >&2; }

ours() { # PID: is it alive and started for DIR?
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$dir/"
}

# The node agent first (it stops its containers on SIGTERM), etcd last.
for name in node scheduler controller-manager apiserver etcd; do
  f=$dir/$name.pid
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do ours "$pid" || break; sleep 0.2; done
    if ours "$pid"; then
      say "$name (pid $pid) did not stop in 20s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$f"
done

[ -z "$keep" ] || exit 0
# The programs k8s-up.sh gave the node agent's images (only a directory it made).
if [ -f "$dir/images-dir" ]; then
  images=$(cat "$dir/images-dir")
  case "$images" in
    /var/tmp/atc-k8s-images.*) rm -rf --one-file-system "$images" ;;
  esac
fi
if [ ! -f "$dir/.atc-k8s" ] || [ "$dir" = / ]; then
  say "not removing $dir: scripts/k8s-up.sh did not make it (no $dir/.atc-k8s)"
  exit 1
fi
# Mount points are field 5 of mountinfo (spaces escaped as \040).
mounts=$(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
if [ -n "$mounts" ]; then
  say "not removing $dir: something is still mounted below it:"
  while read -r m; do echo "  $m" >&2; done <<<"$mounts"
  exit 1
fi
rm -rf --one-file-system "$dir"
say "removed $dir"
