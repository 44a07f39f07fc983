#!/usr/bin/env bash
# End-to-end checks of the node agent through the API server, on a cluster
# started by scripts/k8s-up.sh DIR. Works in a namespace of its own, which it
# deletes at the end. Every pod runs its commands under /tmp.
#
# Usage: tests/k8s/node/e2e.sh DIR
set -euo pipefail

dir=${1:?usage: e2e.sh DIR (from scripts/k8s-up.sh DIR)}
export KUBECONFIG=$dir/admin.kubeconfig
k() { "$dir/bin/kubectl" "$@"; }
ns=pn-e2e-$$
kn() { k -n "$ns" "$@"; }
tmp=$(mktemp -d /tmp/pn-e2e-out.XXXXXX)
failed=0
ok() { echo "e2e: ok: $*" >&2; }
bad() { echo "e2e: FAIL: $*" >&2; failed=1; }
cleanup() {
  k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  k annotate node atc-node-b atc.test/fault- >/dev/null 2>&1 || true
  rm -f "$tmp"/* && rmdir "$tmp"
}
trap cleanup EXIT

# until SECONDS COMMAND...: polls COMMAND until it succeeds.
until_ok() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}
jp() { kn get pod "$1" -o "jsonpath=$2"; }
phase_is() { [ "$(jp "$1" '{.status.phase}')" = "$2" ]; }
has_event() { # POD REASON
  kn get events --field-selector "involvedObject.name=$1" -o 'jsonpath={range .items[*]}{.reason}{"\n"}{end}' | grep -qx "$2"
}

k create namespace "$ns" >/dev/null
until_ok 30 kn get serviceaccount default

# 1. A pod that prints to both streams and exits 3 ends Failed with exit 3.
kn run exit3 --image=busybox --restart=Never -- sh -c 'cd /tmp; echo to-stdout; echo to-stderr >&2; exit 3' >/dev/null
if until_ok 60 phase_is exit3 Failed && [ "$(jp exit3 '{.status.containerStatuses[0].state.terminated.exitCode}')" = 3 ] &&
  [ "$(jp exit3 '{.status.containerStatuses[0].state.terminated.reason}')" = Error ]; then
  ok "kubectl run: Failed, exit code 3, reason Error"
else bad "exit3: $(jp exit3 '{.status}')"; fi
if [ "$(kn logs exit3 | sort | tr '\n' ' ')" = "to-stderr to-stdout " ]; then ok "pods/log has both streams"; else bad "logs: $(kn logs exit3)"; fi
for r in Scheduled Pulling Pulled Created Started; do until_ok 20 has_event exit3 "$r" || bad "exit3: no $r Event"; done

# A host-image pod cannot write the host: its root is an overlay.
hostfile=/tmp/pn-e2e-hostcheck-$$
kn run hostw --image=busybox --restart=Never -- sh -c "cd /tmp && echo x > $hostfile && cat $hostfile" >/dev/null
if until_ok 60 phase_is hostw Succeeded && [ "$(kn logs hostw)" = x ] && [ ! -e "$hostfile" ]; then
  ok "a pod's write to $hostfile stays in the pod"
else bad "hostw: $(jp hostw '{.status.phase}'), host file: $(ls -l "$hostfile" 2>&1)"; fi

# 2. logs -f follows until the container ends.
kn run ticker --image=busybox --restart=Never -- sh -c 'cd /tmp; for i in 1 2 3; do echo tick $i; sleep 0.5; done' >/dev/null
until_ok 60 phase_is ticker Running || until_ok 5 phase_is ticker Succeeded
if [ "$(timeout 30 "$dir/bin/kubectl" -n "$ns" logs -f ticker | tr '\n' ' ')" = "tick 1 tick 2 tick 3 " ]; then ok "logs -f"; else bad "logs -f"; fi

# 3. exec -i: stdin in, stdout and stderr apart, exit code out; attach.
kn run sleeper --image=busybox --restart=Never -- sleep 600 >/dev/null
until_ok 60 phase_is sleeper Running
set +e
echo from-stdin | kn exec -i sleeper -- sh -c 'cd /tmp; cat; echo on-stderr >&2; exit 7' >"$tmp/out" 2>"$tmp/err"
code=$?
set -e
if [ "$code" = 7 ] && [ "$(cat "$tmp/out")" = from-stdin ] && grep -qx on-stderr "$tmp/err"; then
  ok "exec -i: stdin, stdout and stderr apart, exit code 7"
else bad "exec: code $code out $(cat "$tmp/out") err $(cat "$tmp/err")"; fi
"$dir/bin/kubectl" -n "$ns" exec sleeper -- sleep 4242 2>/dev/null &
kpid=$!
until_ok 20 pgrep -f "^sleep 4242" || true
kill "$kpid" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true
no_sleeper() { ! pgrep -f "^sleep 4242"; }
if until_ok 10 no_sleeper; then ok "an exec'd process dies with its stream"; else bad "exec'd sleep 4242 outlived its stream"; fi
kn run reader --image=busybox --restart=Never --stdin --attach=false -- sh -c 'cd /tmp; read x; echo got $x' </dev/null >/dev/null
until_ok 60 phase_is reader Running
if [ "$(echo line | timeout 20 "$dir/bin/kubectl" -n "$ns" attach -i reader 2>/dev/null)" = "got line" ]; then ok "attach -i"; else bad "attach"; fi

# 4. A PVC written on atc-node-a is read on atc-node-b (subPath, Debian rootfs).
kn apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: shared}
spec:
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: atc-node-a}
  containers:
  - name: w
    image: busybox
    workingDir: /tmp/build/x
    command: [sh, -c, 'mkdir -p /data/sub && echo written-on-a > /data/sub/file']
    volumeMounts: [{name: d, mountPath: /data}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: shared}}]
EOF
until_ok 60 phase_is writer Succeeded || bad "writer: $(jp writer '{.status}')"
[ "$(kn get pvc shared -o 'jsonpath={.status.phase}')" = Bound ] && ok "the PVC is Bound" || bad "PVC not Bound"
kn apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: pvreader}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: atc-node-b}
  tolerations: [{key: atc.test/dedicated, operator: Exists}]
  containers:
  - name: r
    image: debian:bookworm
    workingDir: /tmp/build/x
    command: [sh, -c, 'cat /in/file; test -f /etc/debian_version']
    volumeMounts: [{name: d, mountPath: /in, subPath: sub}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: shared}}]
EOF
if until_ok 60 phase_is pvreader Succeeded && [ "$(kn logs pvreader)" = written-on-a ] &&
  [ "$(jp pvreader '{.spec.nodeName}')" = atc-node-b ]; then
  ok "a PVC file written on atc-node-a is read on atc-node-b"
else bad "pvreader: $(kn logs pvreader 2>&1) $(jp pvreader '{.status.phase}')"; fi

# 5. Faults.
fault_pod() { # NAME FAULT IMAGE
  kn run "$1" --image="$3" --restart=Never --annotations="atc.test/fault=$2" -- sleep 60 >/dev/null
}
fault_pod f-pull image-pull busybox
fault_pod f-oom oom busybox
fault_pod f-evict evict busybox
fault_pod f-exec exec-fail busybox
kn run f-unknown --image=nosuch.example/image:1 --restart=Never -- true >/dev/null
waiting_reason() { [ "$(jp "$1" '{.status.containerStatuses[0].state.waiting.reason}')" = "$2" ]; }
for p in f-pull f-unknown; do
  if until_ok 60 waiting_reason "$p" ImagePullBackOff && phase_is "$p" Pending && until_ok 20 has_event "$p" Failed && until_ok 20 has_event "$p" BackOff; then
    ok "$p: Pending, ImagePullBackOff, Failed and BackOff Events"
  else bad "$p: $(jp "$p" '{.status}')"; fi
done
if until_ok 60 phase_is f-oom Failed && [ "$(jp f-oom '{.status.containerStatuses[0].state.terminated.reason}')" = OOMKilled ] &&
  [ "$(jp f-oom '{.status.containerStatuses[0].state.terminated.exitCode}')" = 137 ]; then
  ok "oom: Failed, OOMKilled, exit 137"
else bad "f-oom: $(jp f-oom '{.status}')"; fi
if until_ok 60 phase_is f-evict Failed && [ "$(jp f-evict '{.status.reason}')" = Evicted ] && until_ok 20 has_event f-evict Evicted && until_ok 20 has_event f-evict Killing; then
  ok "evict: Failed, reason Evicted, Evicted and Killing Events"
else bad "f-evict: $(jp f-evict '{.status}')"; fi
until_ok 60 phase_is f-exec Running
if ! kn exec f-exec -- true 2>"$tmp/err" && grep -q 'injected fault' "$tmp/err"; then ok "exec-fail: exec answers an error"; else bad "exec-fail: $(cat "$tmp/err")"; fi
k annotate node atc-node-b atc.test/fault=not-ready >/dev/null
node_ready() { [ "$(k get node atc-node-b -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = "$1" ]; }
if until_ok 30 node_ready False; then ok "node annotation not-ready: atc-node-b NotReady"; else bad "atc-node-b stayed Ready"; fi
k annotate node atc-node-b atc.test/fault- >/dev/null
if until_ok 30 node_ready True; then ok "atc-node-b Ready again"; else bad "atc-node-b stayed NotReady"; fi

# 6. Deleting a running pod stops it and removes it.
if kn delete pod sleeper --timeout=60s >/dev/null; then ok "a running pod is deleted"; else bad "delete sleeper"; fi

if [ "$failed" = 0 ]; then echo "e2e: all checks passed" >&2; else echo "e2e: some checks FAILED" >&2; exit 1; fi
