#!/usr/bin/env bash
# Builds the test Kubernetes tools from the Go module proxy into
# ~/.cache/atc/k8s/ (or $ATC_K8S_CACHE), unless they are there already, and
# prints where they are as shell assignments:
#
#   KUBE=.../kube-v1.37.2-<hash>/kube             apiserver, controller-manager,
#                                                 scheduler, kubectl, etcd
#   HELM=.../helm-v3.22.0-go<version>/helm
#   PROCESS_NODE=.../process-node-<hash>/process-node   (once its source exists)
#   MONITORING_CRDS=.../prometheus-operator-crds-v0.85.0 the ServiceMonitor and
#                                                 PrometheusRule CRDs (YAML), for
#                                                 the Helm chart's checks
#
# Each directory is named after what decides its content: the pinned release
# and a hash of the versions of the modules the binary links, its own Go
# sources, the Go version and the build recipe. Any change there builds a new
# directory (Go's build cache keeps that quick unless many dependencies
# moved); a module added for the other binary changes nothing. Old
# directories are left alone (delete ~/.cache/atc/k8s to start over).
#
# Usage: scripts/k8s-build.sh [kube|helm|process-node|crds]...   (default: all)
#
# A failed step stops the script with its own error and a hint; nothing is
# ever replaced by an imitation.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod=$root/tests/k8s
cache=${ATC_K8S_CACHE:-$HOME/.cache/atc/k8s}
helm_module=helm.sh/helm/v3
helm_version=v3.22.0
# The prometheus-operator module carries its CRDs' YAML (example/prometheus-operator-crd).
monitoring_module=github.com/prometheus-operator/prometheus-operator
monitoring_version=v0.85.0
# Bumped when the way the binaries are built changes, so old ones are not reused.
recipe=1

say() { echo "k8s-build: $*" >&2; }

command -v go >/dev/null || {
  say "go is not installed (Go 1.26 or newer builds tests/k8s; see DEVELOPERS.md)"
  exit 1
}
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod")
[ -n "$k8s_version" ] || { say "no k8s.io/kubernetes requirement in $mod/go.mod"; exit 1; }
go_version=$(go env GOVERSION)

mkdir -p "$cache/logs"
# Two builds of the same thing at once (two worktrees, two test runs) would
# only race each other: take turns.
exec 9>"$cache/.build.lock"
flock 9

# inputs_hash PACKAGE: a short hash of everything that decides the binary
# built from PACKAGE: the module versions of its dependencies (as go list
# resolves them, so a requirement added for another binary does not count),
# the contents of its own module's Go and embedded files, the Go version and
# this script's recipe.
inputs_hash() {
  local listing errors=$cache/logs/go-list.err
  # stderr apart: "go: downloading ..." lines must not change the hash.
  listing=$(go -C "$mod" list -deps -f '{{with .Module}}{{if .Main}}{{range $.GoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range $.CgoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range $.EmbedFiles}}{{$.Dir}}/{{.}}
{{end}}{{else}}module {{.Path}} {{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}
{{end}}{{end}}' "$1" 2>"$errors") || {
    say "FAILED: go list $1 (in tests/k8s)"
    tail -n 40 "$errors" | sed 's/^/  /' >&2
    say "hint: tests/k8s/go.mod or go.sum does not resolve; 'cd tests/k8s && go list -deps $1' shows the same error"
    exit 1
  }
  {
    echo "recipe=$recipe go=$go_version"
    grep -v '^/' <<<"$listing" | sort -u
    grep '^/' <<<"$listing" | sort -u | while read -r f; do
      echo "${f#"$mod"/} $(sha256sum <"$f" | cut -c1-64)"
    done
  } | sha256sum | cut -c1-16
}

# run_step NAME HINT COMMAND...: runs a build step with its output in a log;
# on failure shows the end of that log and the hint, and stops.
run_step() {
  local name=$1 hint=$2
  shift 2
  local log=$cache/logs/$name.log
  say "building $name (log: $log)"
  local start=$SECONDS
  if ! nice -n 19 "$@" >"$log" 2>&1; then
    say "FAILED: $name"
    tail -n 40 "$log" | sed 's/^/  /' >&2
    say "hint: $hint"
    exit 1
  fi
  say "built $name in $((SECONDS - start))s"
}

# The version strings upstream's build sets at link time, so that kubectl
# version and helm's kubeVersion checks see the real release.
version_ldflags() {
  local v=${k8s_version#v} flags="-s -w"
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

build_kube() {
  local dir
  dir=$cache/kube-$k8s_version-$(inputs_hash ./cmd/kube)
  if [ ! -x "$dir/kube" ]; then
    mkdir -p "$dir"
    run_step kube \
      "check the pins in tests/k8s/go.mod (k8s.io/kubernetes $k8s_version and its staging replaces) and that the Go proxy answers ($(go env GOPROXY)); 'cd tests/k8s && go build ./cmd/kube' shows the same error" \
      go -C "$mod" build -trimpath -buildvcs=false -ldflags "$(version_ldflags)" -o "$dir/kube.tmp" ./cmd/kube
    mv "$dir/kube.tmp" "$dir/kube"
  fi
  echo "KUBE=$dir/kube"
}

build_process_node() {
  if [ ! -d "$mod/cmd/process-node" ]; then
    say "no tests/k8s/cmd/process-node yet: the cluster will have no node"
    return
  fi
  local dir
  dir=$cache/process-node-$(inputs_hash ./cmd/process-node)
  if [ ! -x "$dir/process-node" ]; then
    mkdir -p "$dir"
    run_step process-node \
      "the node agent lives in tests/k8s/node and tests/k8s/cmd/process-node; 'cd tests/k8s && go build ./cmd/process-node' shows the same error" \
      go -C "$mod" build -trimpath -buildvcs=false -ldflags "-s -w" -o "$dir/process-node.tmp" ./cmd/process-node
    mv "$dir/process-node.tmp" "$dir/process-node"
  fi
  echo "PROCESS_NODE=$dir/process-node"
}

build_helm() {
  local dir=$cache/helm-$helm_version-go${go_version#go}
  if [ ! -x "$dir/helm" ]; then
    mkdir -p "$dir"
    # go install with a version builds the module on its own, outside tests/k8s.
    run_step helm \
      "is $helm_module@$helm_version served by the Go proxy ($(go env GOPROXY))? 'go install $helm_module/cmd/helm@$helm_version' shows the same error" \
      env -C / GOBIN="$dir" go install -trimpath -buildvcs=false -ldflags "-s -w" "$helm_module/cmd/helm@$helm_version"
  fi
  echo "HELM=$dir/helm"
}

# The CRDs the chart's ServiceMonitor and PrometheusRule need, copied out of
# the prometheus-operator module as the Go module proxy serves it.
build_crds() {
  local dir=$cache/prometheus-operator-crds-$monitoring_version
  if [ ! -f "$dir/monitoring.coreos.com_prometheusrules.yaml" ]; then
    mkdir -p "$dir"
    run_step crds \
      "is $monitoring_module@$monitoring_version served by the Go proxy ($(go env GOPROXY))? 'go mod download $monitoring_module@$monitoring_version' shows the same error" \
      env -C / go mod download "$monitoring_module@$monitoring_version"
    local src
    src=$(env -C / go mod download -json "$monitoring_module@$monitoring_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    for kind in servicemonitors prometheusrules; do
      cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$dir/.tmp-$kind.yaml"
      mv "$dir/.tmp-$kind.yaml" "$dir/monitoring.coreos.com_$kind.yaml"
    done
  fi
  echo "MONITORING_CRDS=$dir"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kube helm process-node crds)
for t in "${targets[@]}"; do
  case $t in
    kube) build_kube ;;
    helm) build_helm ;;
    process-node) build_process_node ;;
    crds) build_crds ;;
    *) say "unknown target $t (kube, helm, process-node, crds)"; exit 2 ;;
  esac
done
