#!/usr/bin/env bash
# The Node agent example (docs/agents/node) against a real `noesis serve`,
# under the shipped access control: a nats-server process with nats-auth.conf,
# noesis as its worker user (simulated models), the agent as daimon-1 with the
# official NATS JavaScript client. 50 thoughts, each answered exactly once,
# every payload valid against the schemas; then four gates through judge()
# (a pass, a fail, a hung judge past judge()'s timeout: the tribunal's
# deadline is 8 s here, so the hung thought's unavailable verdict comes after
# it; a thought dead-lettered, heard from the agent's own notice). Then the AsyncAPI document is checked with the official parser.
# Needs bin/noesis, nats-server on PATH, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

export NOESIS_WORKER_PASSWORD=ci-worker-$RANDOM NOESIS_ADMIN_PASSWORD=ci-admin-$RANDOM NOESIS_AGENT_PASSWORD=ci-agent-$RANDOM NOESIS_REVIEWER_PASSWORD=ci-reviewer-$RANDOM
sed -e "s|listen: 127.0.0.1:4222|listen: 127.0.0.1:$port|" -e "s|store_dir: \"./data\"|store_dir: \"$tmp/js\"|" nats-auth.conf >"$tmp/nats.conf"
nats-server -c "$tmp/nats.conf" >"$tmp/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "Server is ready" "$tmp/nats.log" && break; sleep 0.1; done
grep -q "Server is ready" "$tmp/nats.log" || { cat "$tmp/nats.log"; exit 1; }

NATS_URL=nats://127.0.0.1:$port NATS_USER=worker NATS_PASSWORD=$NOESIS_WORKER_PASSWORD LLM_PROVIDER=sim \
  NOESIS_SIM_LATENCY_SCALE=0.05 NOESIS_TRIBUNAL_DEADLINE=8s NOESIS_LOG_FORMAT=json \
  ./bin/noesis serve --env-file /dev/null >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "noesis is running" "$tmp/serve.log" && break; sleep 0.1; done
grep -q "noesis is running" "$tmp/serve.log" || { cat "$tmp/serve.log"; exit 1; }

cd "$root/docs/agents/node"
npm ci --no-audit --no-fund --loglevel=error
NATS_URL=nats://127.0.0.1:$port NATS_USER=daimon-1 NATS_PASSWORD=$NOESIS_AGENT_PASSWORD THOUGHTS=50 node agent.mjs ||
  { tail -50 "$tmp/serve.log"; exit 1; }
node validate-asyncapi.mjs

cd "$root"
if python3 -c 'import jsonschema, referencing' 2>/dev/null; then
  python3 docs/agents/python/agent.py --check-schemas
else
  echo "python: jsonschema is not installed here (PyPI is out of reach): the Python example's schema check is skipped"
fi
