#!/usr/bin/env bash
# Smoke test of the built binary as a user runs it: `noesis serve` on its
# embedded defaults (on a spare port and a temporary data dir), `noesis
# publish`, and the real `nats sub`, which must see the thought, one narrative and one verdict.
# Needs bin/noesis and the nats CLI on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/noesis
tmp=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
export NOESIS_NATS_LISTEN=127.0.0.1:$port NOESIS_DATA_DIR=$tmp/data NOESIS_SIM_LATENCY_SCALE=0.05 NOESIS_LOG_FORMAT=json
unset NATS_URL NEBIUS_API_KEY LLM_PROVIDER
$bin serve --env-file /dev/null >"$tmp/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do grep -q "noesis is running" "$tmp/serve.log" && break; sleep 0.1; done
grep -q "noesis is running" "$tmp/serve.log" || { cat "$tmp/serve.log"; exit 1; }
timeout 30 nats -s "nats://127.0.0.1:$port" sub 'noesis.*.smoke-agent' --count 3 >"$tmp/outputs.txt" 2>&1 &
watch=$!
sleep 1
$bin publish --env-file /dev/null --agent smoke-agent --text "smoke test: I will archive last week's logs" --depth 2 --coherence 0.8
wait $watch || { echo "smoke: outputs missing"; cat "$tmp/outputs.txt" "$tmp/serve.log"; exit 1; }
cat "$tmp/outputs.txt"
grep -q 'noesis.narratives.smoke-agent' "$tmp/outputs.txt"
grep -q 'noesis.verdicts.smoke-agent' "$tmp/outputs.txt"
kill -TERM $pid
wait $pid
grep -q "noesis stopped" "$tmp/serve.log"
echo "smoke: ok"
