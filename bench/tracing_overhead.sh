#!/usr/bin/env bash
# What tracing costs the API: requests/second on /api/v1/info and on a
# pipeline list with tracing off, with `always` exporting every span to a
# local OTLP receiver, and with `probability` 0.01. One release build, three
# servers started side by side, measurements interleaved (so background load
# hits all three alike), the median of the rounds kept. Not part of the tests.
#
# Throughput on a shared two-core machine moves with whatever else runs, so
# the script also reports CPU time per request (the server process's, its
# export thread included, from /proc): the cost tracing adds, and much
# steadier than requests/second when the machine is busy. `cargo bench
# --bench http_layer` measures the same without the network, to the
# sub-microsecond.
#
#   bench/tracing_overhead.sh [SECONDS_PER_ROUND] [ROUNDS]
#
# Needs wrk (Debian package `wrk`; installed here when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_ROUND="${1:-3}"
ROUNDS="${2:-7}"
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

declare -A PORT TOKEN PID_OF
# start NAME FLAGS...: an `atc quickstart` with its own data dir, on PORT[NAME].
start() {
  local name=$1; shift
  PORT[$name]=$(free_port)
  env -u OTEL_EXPORTER_OTLP_ENDPOINT "$ATC" quickstart --data-dir "$WORK/$name" --bind-port "${PORT[$name]}" \
    --prometheus-bind-port 0 --add-local-user bench:bench --main-team-local-user bench --log-level error "$@" \
    > "$WORK/$name.out" 2>&1 &
  PIDS+=($!)
  PID_OF[$name]=$!
  for _ in $(seq 300); do grep -q "trigger-job" "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "trigger-job" "$WORK/$name.out" || { cat "$WORK/$name.out" >&2; exit 1; }
}

start off
start always --tracing-otlp-address "$SINK" --tracing-otlp-protocol http/protobuf
start p001 --tracing-otlp-address "$SINK" --tracing-otlp-protocol http/protobuf \
  --tracing-sampling-strategy probability --tracing-sampling-rate 0.01

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

# cpu_ticks PID: user + system CPU time of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# measure SERVER PATH: "requests/second CPU-microseconds/request" of one round.
measure() {
  local before after out
  before=$(cpu_ticks "${PID_OF[$1]}")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" -H "Authorization: Bearer ${TOKEN[$1]}" \
    "http://127.0.0.1:${PORT[$1]}$2")
  after=$(cpu_ticks "${PID_OF[$1]}")
  echo "$out" | awk -v ticks=$((after - before)) -v tick_us="$TICK_US" '
    / requests in / {requests = $1} /^Requests\/sec/ {rps = $2}
    END {printf "%s %.2f\n", rps, ticks * tick_us / requests}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RPS CPU
for path in /api/v1/info /api/v1/teams/main/pipelines; do
  for s in off always p001; do measure "$s" "$path" >/dev/null; done  # warm up
  declare -A RPS_SAMPLES=() CPU_SAMPLES=()
  for round in $(seq "$ROUNDS"); do
    # Rotate the order so a burst of background load does not always hit the same server.
    order=(off always p001 off always p001)
    for s in "${order[@]:$((round % 3)):3}"; do
      read -r rps cpu < <(measure "$s" "$path")
      RPS_SAMPLES[$s]+="$rps "
      CPU_SAMPLES[$s]+="$cpu "
    done
  done
  for s in off always p001; do
    RPS[$s$path]=$(echo "${RPS_SAMPLES[$s]}" | tr ' ' '\n' | grep . | median)
    CPU[$s$path]=$(echo "${CPU_SAMPLES[$s]}" | tr ' ' '\n' | grep . | median)
  done
done

echo
echo "median of $ROUNDS rounds of ${SECONDS_PER_ROUND}s each, $CONNECTIONS connections, release build, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s %9s %9s %9s %12s %12s\n' "requests/second" off always p=0.01 "always cost" "p=0.01 cost"
for path in /api/v1/info /api/v1/teams/main/pipelines; do
  awk -v p="$path" -v off="${RPS[off$path]}" -v a="${RPS[always$path]}" -v q="${RPS[p001$path]}" 'BEGIN {
    printf "%-30s %9.0f %9.0f %9.0f %11.1f%% %11.1f%%\n", p, off, a, q, (1 - a/off) * 100, (1 - q/off) * 100 }'
done
printf '%-30s %9s %9s %9s %12s %12s\n' "CPU us/request" off always p=0.01 "always cost" "p=0.01 cost"
for path in /api/v1/info /api/v1/teams/main/pipelines; do
  awk -v p="$path" -v off="${CPU[off$path]}" -v a="${CPU[always$path]}" -v q="${CPU[p001$path]}" 'BEGIN {
    printf "%-30s %9.1f %9.1f %9.1f %11.1f%% %11.1f%%\n", p, off, a, q, (a/off - 1) * 100, (q/off - 1) * 100 }'
done
echo "goal: always costs at most 5%, p=0.01 at most 1%"
