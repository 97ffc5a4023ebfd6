#!/usr/bin/env bash
# Smoke test of the built binary as a user runs it: `noesis serve` on its
# embedded defaults (on a port the kernel chooses and a temporary data dir),
# `noesis publish`, and the real `nats sub`, which must see the thought, one
# narrative and one verdict.
# Needs bin/noesis and the nats CLI on PATH.
#
# Nothing here waits a fixed time and hopes: the port is the one the embedded
# server reports it took, the subscription is known to be in place when a
# probe published after it has come back through it, and every wait is a loop
# on a condition with a deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/noesis
tmp=$(mktemp -d)
export NOESIS_NATS_LISTEN=127.0.0.1:0 NOESIS_DATA_DIR=$tmp/data NOESIS_SIM_LATENCY_SCALE=0.05 NOESIS_LOG_FORMAT=json
unset NATS_URL NEBIUS_API_KEY LLM_PROVIDER
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

. .ci/wait.sh # until_ok

$bin serve --env-file /dev/null >"$tmp/serve.log" 2>&1 &
pid=$!
pids+=("$pid")
until_ok 30 grep -q "noesis is running" "$tmp/serve.log" || { echo "smoke: serve did not start"; cat "$tmp/serve.log"; exit 1; }
url=$(grep -o '"url":"nats://[^"]*"' "$tmp/serve.log" | head -1 | cut -d'"' -f4)
[ -n "$url" ] || { echo "smoke: no NATS url in the log"; cat "$tmp/serve.log"; exit 1; }
echo "smoke: serve is running, embedded NATS at $url"

nats -s "$url" sub 'noesis.*.smoke-agent' >"$tmp/outputs.txt" 2>&1 &
pids+=("$!")
# The subscription is in place once a probe published after it comes back.
probe() { nats -s "$url" pub noesis.probe.smoke-agent ping >/dev/null 2>&1; grep -q 'noesis.probe.smoke-agent' "$tmp/outputs.txt"; }
until_ok 15 probe || { echo "smoke: nats sub never saw its probe"; cat "$tmp/outputs.txt"; exit 1; }

NATS_URL=$url $bin publish --env-file /dev/null --agent smoke-agent --text "smoke test: I will archive last week's logs" --depth 2 --coherence 0.8
outputs() { grep -q 'noesis.thoughts.smoke-agent' "$tmp/outputs.txt" && grep -q 'noesis.narratives.smoke-agent' "$tmp/outputs.txt" && grep -q 'noesis.verdicts.smoke-agent' "$tmp/outputs.txt"; }
until_ok 60 outputs || { echo "smoke: outputs missing"; cat "$tmp/outputs.txt" "$tmp/serve.log"; exit 1; }
grep -v '^$' "$tmp/outputs.txt" | cut -c1-200
kill -TERM "$pid"
wait "$pid"
grep -q "noesis stopped" "$tmp/serve.log"
echo "smoke: ok"
