#!/usr/bin/env bash
# What tracing costs the API: requests/second on /api/v1/info and on a
# pipeline list with tracing off, with `always` exporting every span to a
# local OTLP receiver, and with `probability` 0.01. One release build, three
# servers started side by side, measurements interleaved (so background load
# hits all three alike), the median of the rounds kept. Not part of the tests.
#
#   bench/tracing_overhead.sh [SECONDS_PER_ROUND] [ROUNDS]
#
# Needs wrk (Debian package `wrk`; installed here when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_ROUND="${1:-5}"
ROUNDS="${2:-3}"
CONNECTIONS=32

if ! command -v wrk >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
  apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --quiet --bin atc
ATC="${CARGO_TARGET_DIR:-target}/release/atc"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/otlp_sink.py > "$WORK/sink.port" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/sink.port" ] && break; sleep 0.1; done
SINK="http://127.0.0.1:$(head -1 "$WORK/sink.port")"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME FLAGS...: an `atc quickstart` with its own data dir; prints its port.
start() {
  local name=$1; shift
  local port; port=$(free_port)
  env -u OTEL_EXPORTER_OTLP_ENDPOINT "$ATC" quickstart --data-dir "$WORK/$name" --bind-port "$port" \
    --prometheus-bind-port 0 --add-local-user bench:bench --main-team-local-user bench --log-level error "$@" \
    > "$WORK/$name.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do grep -q "trigger-job" "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "trigger-job" "$WORK/$name.out" || { cat "$WORK/$name.out" >&2; exit 1; }
  echo "$port"
}

declare -A PORT TOKEN
PORT[off]=$(start off)
PORT[always]=$(start always --tracing-otlp-address "$SINK" --tracing-otlp-protocol http/protobuf)
PORT[p001]=$(start p001 --tracing-otlp-address "$SINK" --tracing-otlp-protocol http/protobuf \
  --tracing-sampling-strategy probability --tracing-sampling-rate 0.01)

# Ten pipelines per server, listed by a logged-in user.
for s in off always p001; do
  url="http://127.0.0.1:${PORT[$s]}"
  TOKEN[$s]=$(curl -sf -u fly:Zmx5 -d grant_type=password -d username=bench -d password=bench -d scope=openid \
    "$url/sky/issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  for i in $(seq 10); do
    curl -sf -X PUT -H "Authorization: Bearer ${TOKEN[$s]}" -H 'Content-Type: application/x-yaml' \
      --data-binary @examples/hello.yml "$url/api/v1/teams/main/pipelines/p$i/config" >/dev/null
  done
done

# rps SERVER PATH: requests/second of one round.
rps() {
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" -H "Authorization: Bearer ${TOKEN[$1]}" \
    "http://127.0.0.1:${PORT[$1]}$2" | awk '/^Requests\/sec/ {print $2}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RESULT
for path in /api/v1/info /api/v1/teams/main/pipelines; do
  for s in off always p001; do rps "$s" "$path" >/dev/null; done  # warm up
  declare -A SAMPLES=()
  for _ in $(seq "$ROUNDS"); do
    for s in off always p001; do SAMPLES[$s]+="$(rps "$s" "$path") "; done
  done
  for s in off always p001; do
    RESULT[$s$path]=$(echo "${SAMPLES[$s]}" | tr ' ' '\n' | grep . | median)
  done
done

echo
echo "requests/second (median of $ROUNDS rounds of ${SECONDS_PER_ROUND}s, $CONNECTIONS connections, release build)"
printf '%-32s %12s %12s %12s %14s %14s\n' endpoint off always p=0.01 "always cost" "p=0.01 cost"
for path in /api/v1/info /api/v1/teams/main/pipelines; do
  off=${RESULT[off$path]}; always=${RESULT[always$path]}; p001=${RESULT[p001$path]}
  awk -v p="$path" -v off="$off" -v a="$always" -v q="$p001" 'BEGIN {
    printf "%-32s %12.0f %12.0f %12.0f %13.1f%% %13.1f%%\n", p, off, a, q, (1 - a/off) * 100, (1 - q/off) * 100 }'
done
echo "goal: always costs at most 5%, p=0.01 at most 1%"
