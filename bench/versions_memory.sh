#!/usr/bin/env bash
# How much memory concurrent version listings cost: one resource with many
# large versions, then many clients listing its versions at once (the
# default page, as the UI and `fly resource-versions` ask). Prints the
# server's resident memory before the listings, its peak during them, and
# how long they took. Not part of the tests.
#
#   bench/versions_memory.sh [ATC_BINARY] [VERSIONS] [VERSION_BYTES] [CLIENTS]
#
# ATC_BINARY defaults to a debug build of this checkout; compare two
# binaries by running the script once with each.
set -euo pipefail
cd "$(dirname "$0")/.."
ATC="${1:-}"
VERSIONS="${2:-10000}"
VERSION_BYTES="${3:-4000}"
CLIENTS="${4:-200}"

if [ -z "$ATC" ]; then
  cargo build --quiet --bin atc
  ATC="${CARGO_TARGET_DIR:-target}/debug/atc"
fi
WORK=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A resource type whose check reports up to 1000 versions after the one it
# is given (captured output is limited), up to `count`, of `size` bytes each.
mkdir -p "$WORK/types/bulk"
cat > "$WORK/types/bulk/check" <<'EOF'
#!/usr/bin/env python3
import json, sys
request = json.load(sys.stdin)
source, last = request["source"], int(request.get("version", {}).get("n", "0"))
pad = "x" * int(source["size"])
newest = min(last + 1000, int(source["count"]))
print(json.dumps([{"n": str(i), "pad": pad} for i in range(max(last, 1), newest + 1)]))
EOF
printf '#!/bin/sh\necho "{\\"version\\": {}}"\n' > "$WORK/types/bulk/in"
cp "$WORK/types/bulk/in" "$WORK/types/bulk/out"
chmod +x "$WORK/types/bulk/"*

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
"$ATC" quickstart --data-dir "$WORK/data" --bind-port "$PORT" --prometheus-bind-port 0 \
  --resource-types-dir "$WORK/types" --add-local-user bench:bench --main-team-local-user bench \
  --log-level error > "$WORK/atc.out" 2>&1 &
PID=$!
for _ in $(seq 300); do curl -sf "$URL/api/v1/info" >/dev/null 2>&1 && break; sleep 0.1; done

TOKEN=$(curl -sf -u fly:Zmx5 -d grant_type=password -d username=bench -d password=bench -d scope=openid \
  "$URL/sky/issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
AUTH="Authorization: Bearer $TOKEN"
P="$URL/api/v1/teams/main/pipelines/big"
curl -sf -X PUT -H "$AUTH" -H 'Content-Type: application/x-yaml' --data-binary @- "$P/config" >/dev/null <<EOF
resources:
- name: r
  type: bulk
  check_every: never
  source: {count: "$VERSIONS", size: "$VERSION_BYTES"}
jobs:
- name: j
  plan: [{get: r}]
EOF
curl -sf -X PUT -H "$AUTH" "$P/unpause" >/dev/null
newest=0
for _ in $(seq 600); do
  [ "$newest" = "$VERSIONS" ] && break
  build=$(curl -sf -X POST -H "$AUTH" -H 'Content-Type: application/json' -d '{}' "$P/resources/r/check" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  until curl -sf -H "$AUTH" "$URL/api/v1/builds/$build" | grep -Eq '"status":"(succeeded|failed|errored)"'; do
    sleep 0.2
  done
  newest=$(curl -sf -H "$AUTH" "$P/resources/r/versions?limit=1" |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[0]["version"]["n"] if v else 0)')
done
[ "$newest" = "$VERSIONS" ] || { echo "the check did not save $VERSIONS versions" >&2; cat "$WORK/atc.out" >&2; exit 1; }

rss_kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$PID/status"; }
before=$(rss_kib VmRSS)
# Peak RSS is read from VmHWM; reset it so it covers only the listings.
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || true
start=$(date +%s.%N)
python3 - "$P/resources/r/versions" "$TOKEN" "$CLIENTS" <<'EOF'
import sys, threading, urllib.request
url, token, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
barrier = threading.Barrier(clients)
failures = []
def get():
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    barrier.wait()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
    except Exception as err:
        failures.append(err)
threads = [threading.Thread(target=get) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
if failures:
    sys.exit(f"{len(failures)} requests failed, first: {failures[0]}")
EOF
end=$(date +%s.%N)
peak=$(rss_kib VmHWM)
after=$(rss_kib VmRSS)
echo "$VERSIONS versions of ${VERSION_BYTES} bytes, $CLIENTS concurrent GETs of the default page, $ATC"
awk -v b="$before" -v p="$peak" -v a="$after" -v s="$start" -v e="$end" 'BEGIN {
  printf "RSS before %.0f MiB, peak %.0f MiB, after %.0f MiB; listings took %.1f s\n", b/1024, p/1024, a/1024, e-s }'
