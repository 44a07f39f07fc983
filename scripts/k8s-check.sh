#!/usr/bin/env bash
# Checks by hand that a control plane from scripts/k8s-up.sh DIR is the real
# thing: ready, RBAC enforced for a TokenRequest token, controllers and
# scheduler at work, garbage collection of owned objects, helm. Works in a
# namespace of its own and deletes it at the end.
#
# Usage: scripts/k8s-check.sh DIR
set -euo pipefail

if [ $# -ne 1 ] || [ ! -f "$1/env" ]; then echo "usage: $0 DIR (a directory made by scripts/k8s-up.sh)" >&2; exit 2; fi
# shellcheck disable=SC1091
. "$1/env"
export KUBECONFIG
kubectl() { "$KUBECTL" "$@"; }
ns=atc-check-$$
say() { echo "k8s-check: $*"; }
fail() { echo "k8s-check: FAILED: $*" >&2; exit 1; }

# until_ok SECONDS WHAT COMMAND...: polls with a deadline.
until_ok() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what"
    sleep 0.2
  done
  say "ok: $what"
}

[ "$(kubectl get --raw /readyz)" = ok ] || fail "/readyz"
say "ok: /readyz"
[ "$(kubectl auth can-i '*' '*')" = yes ] || fail "admin can do everything"
say "ok: admin can do everything"
kubectl version -o json | grep -q '"gitVersion": "v1.37' || fail "server version"

kubectl create namespace "$ns" >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
until_ok 30 "namespace has its default service account" kubectl -n "$ns" get serviceaccount default

# RBAC: a token for an account that may read pods but not create them.
kubectl -n "$ns" create serviceaccount limited >/dev/null
kubectl -n "$ns" create role read-pods --verb get,list,watch --resource pods >/dev/null
kubectl -n "$ns" create rolebinding limited --role read-pods --serviceaccount "$ns:limited" >/dev/null
token=$(kubectl -n "$ns" create token limited --duration 10m)
as_limited() {
  "$KUBECTL" --kubeconfig /dev/null --server "$K8S_API_SERVER" \
    --certificate-authority "$K8S_CA_FILE" --token "$token" "$@"
}
[ "$(as_limited -n "$ns" auth can-i list pods)" = yes ] || fail "the token may list pods"
[ "$(as_limited -n "$ns" auth can-i create pods 2>/dev/null || true)" = no ] || fail "the token may not create pods"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA_FILE" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -X POST "$K8S_API_SERVER/api/v1/namespaces/$ns/pods" \
  -d '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x"}]}}')
[ "$code" = 403 ] || fail "creating a pod with the token answered $code, not 403"
say "ok: the restricted token is refused with 403 when it creates a pod"

# Controllers: a Deployment gets its ReplicaSet and pods.
kubectl -n "$ns" create deployment web --image=busybox --replicas=2 -- sleep 3600 >/dev/null
until_ok 30 "the Deployment got a ReplicaSet with 2 pods" \
  test "$(kubectl -n "$ns" get pods -l app=web -o name | wc -l)" -eq 2
# Scheduler: a pod no node matches stays Pending with FailedScheduling.
kubectl -n "$ns" run nowhere --image=busybox --restart=Never \
  --overrides '{"spec":{"nodeSelector":{"atc.test/no-such-label":"x"}}}' -- true >/dev/null
until_ok 30 "the scheduler reports FailedScheduling for a pod no node matches" \
  sh -c "'$KUBECTL' -n '$ns' get events --field-selector involvedObject.name=nowhere,reason=FailedScheduling -o name | grep -q ."

# Garbage collection: an object owned by a deleted object goes too.
kubectl -n "$ns" create configmap owner --from-literal=a=b >/dev/null
uid=$(kubectl -n "$ns" get configmap owner -o jsonpath='{.metadata.uid}')
kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: "$uid"}
data: {x: "1"}
YAML
kubectl -n "$ns" delete configmap owner >/dev/null
until_ok 60 "an object whose owner was deleted is garbage-collected" \
  sh -c "! '$KUBECTL' -n '$ns' get configmap owned"

# helm installs and removes a release.
chart=$(mktemp -d)
mkdir "$chart/templates"
printf 'apiVersion: v2\nname: check\nversion: 0.1.0\nkubeVersion: ">=1.37.0-0"\n' >"$chart/Chart.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  k: v\n' >"$chart/templates/cm.yaml"
"$HELM" install check "$chart" -n "$ns" >/dev/null
kubectl -n "$ns" get configmap check-cm >/dev/null || fail "helm installed the chart's ConfigMap"
"$HELM" uninstall check -n "$ns" >/dev/null
rm -f "$chart/Chart.yaml" "$chart/templates/cm.yaml"
rmdir "$chart/templates" "$chart"
say "ok: helm installs and uninstalls a chart"

say "all checks passed"
