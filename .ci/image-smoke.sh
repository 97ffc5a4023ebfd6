#!/usr/bin/env bash
# The container image as a cluster runs it: its size, its user, its version,
# and a smoke run with buildah (no daemon): a nats-server process under the
# shipped nats-auth.conf, the simulator from the image, `noesis serve` from
# the image as the worker user calling it over HTTP as an OpenAI-compatible
# endpoint; a thought published as daimon-1 must get its narrative and its
# verdict, and /readyz must answer 200.
# Needs: IMAGE (name:tag), VERSION, buildah, nats-server and nats on PATH, bin/noesis.
set -euo pipefail
cd "$(dirname "$0")/.."
b="buildah --storage-driver vfs"
img=${IMAGE:?} version=${VERSION:?}
tmp=$(mktemp -d)
pids=() ctrs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for c in "${ctrs[@]}"; do $b rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "image-smoke: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -30 "$f"; done; exit 1; }
container() { local c; c=$($b from "$img"); ctrs+=("$c"); echo "$c"; }
. .ci/wait.sh # until_ok

# Size: the layers as stored (uncompressed) and as a registry keeps them (gzip).
raw=$($b inspect --type image --format '{{.Manifest}}' "$img" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
$b push --quiet "$img" "oci:$tmp/layout:smoke" >/dev/null
packed=$(du -sb "$tmp/layout/blobs" | cut -f1)
echo "image $img: $raw bytes uncompressed, $packed bytes compressed (oci layout)"
[ "$raw" -le 30000000 ] || fail "the image is $raw bytes, over 30 MB"

user=$($b inspect --type image --format '{{.OCIv1.Config.User}}' "$img")
[ "$user" = "65532:65532" ] || fail "the image runs as '$user', want 65532:65532"
c=$(container)
out=$($b run --isolation chroot "$c" -- /noesis version)
echo "$out"
[[ "$out" == "noesis $version "* ]] || fail "version says '$out', want $version"
# Running as 65532, it cannot write to / (root's); as root it could.
cp nats-auth.conf "$tmp/probe.conf" && chmod 644 "$tmp/probe.conf"
if $b run --isolation chroot --volume "$tmp/probe.conf:/probe.conf" "$c" -- /noesis agent add probe --conf /probe.conf --dir / >"$tmp/probe.log" 2>&1; then
  fail "the image's process could write to /: it runs as root"
fi
grep -q "permission denied" "$tmp/probe.log" || fail "expected permission denied writing to / as 65532"
# Without NATS_URL it says what to set (the image has no embedded server).
if $b run --isolation chroot "$c" -- /noesis serve >"$tmp/noembed.log" 2>&1; then fail "serve without NATS_URL started"; fi
grep -q "set NATS_URL" "$tmp/noembed.log" || fail "serve without NATS_URL did not say to set it"

# The smoke run, under the shipped access control.
export NOESIS_WORKER_PASSWORD=img-worker-$RANDOM NOESIS_ADMIN_PASSWORD=img-admin-$RANDOM NOESIS_AGENT_PASSWORD=img-agent-$RANDOM NOESIS_REVIEWER_PASSWORD=img-reviewer-$RANDOM
# Every port is one the kernel chose (listen on port 0, or -1 for nats-server), read back from the logs.
sed -e "s|listen: 127.0.0.1:4222|listen: 127.0.0.1:-1|" -e "s|store_dir: \"./data\"|store_dir: \"$tmp/js\"|" nats-auth.conf >"$tmp/nats.conf"
nats-server -c "$tmp/nats.conf" >"$tmp/nats.log" 2>&1 &
pids+=($!)
until_ok 15 grep -q "Server is ready" "$tmp/nats.log" || fail "nats-server did not start"
port=$(grep -o 'Listening for client connections on 127.0.0.1:[0-9]*' "$tmp/nats.log" | head -1 | sed 's/.*://')

sim=$(container)
$b config --env NOESIS_SIM_LISTEN=127.0.0.1:0 --env NOESIS_SIM_LATENCY_SCALE=0.05 --env NOESIS_LOG_FORMAT=json "$sim"
$b run --isolation chroot "$sim" -- /noesis sim --env-file /dev/null >"$tmp/sim.log" 2>&1 &
pids+=($!)
until_ok 15 grep -q "simulator listening" "$tmp/sim.log" || fail "the simulator did not start"
simurl=$(grep -o '"url":"http://[^"]*"' "$tmp/sim.log" | head -1 | cut -d'"' -f4)
[ -n "$simurl" ] || fail "no simulator url in its log"

svc=$(container)
$b config --env NATS_URL=nats://127.0.0.1:$port --env NATS_USER=worker --env NATS_PASSWORD=$NOESIS_WORKER_PASSWORD \
  --env LLM_PROVIDER=openai --env OPENAI_BASE_URL=$simurl --env OPENAI_API_KEY=sk-image-smoke \
  --env NOESIS_METRICS_ADDR=127.0.0.1:0 --env NOESIS_LOG_FORMAT=json "$svc"
$b run --isolation chroot "$svc" -- /noesis serve --env-file /dev/null >"$tmp/serve.log" 2>&1 &
pids+=($!)
until_ok 30 grep -q "noesis is running" "$tmp/serve.log" || fail "serve did not start"
maddr=$(grep -o '"metrics_addr":"[^"]*"' "$tmp/serve.log" | head -1 | cut -d'"' -f4)
[ -n "$maddr" ] || fail "no metrics address in the log"
grep -q "sk-image-smoke" "$tmp/serve.log" && fail "the API key reached the log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$maddr/readyz")
[ "$code" = 200 ] || fail "/readyz answered $code"

agent=(-s "nats://127.0.0.1:$port" --user daimon-1 --password "$NOESIS_AGENT_PASSWORD" --inbox-prefix _INBOX_daimon-1)
# An agent may subscribe to its own subjects only, one by one. nats sub says
# "Subscribing" just before it subscribes and flushes: the thought published
# after that is answered by models that take far longer than that flush.
watch=()
for kind in narratives verdicts; do
  timeout 60 nats "${agent[@]}" sub "noesis.$kind.daimon-1" --count 1 >"$tmp/$kind.log" 2>&1 &
  watch+=($!)
  until_ok 15 grep -qi "subscribing" "$tmp/$kind.log" || fail "nats sub on $kind did not start"
done
NATS_URL=nats://127.0.0.1:$port NATS_USER=daimon-1 NATS_PASSWORD=$NOESIS_AGENT_PASSWORD \
  ./bin/noesis publish --env-file /dev/null --agent daimon-1 --text "image smoke: I will rotate the TLS certificates" --depth 2
for w in "${watch[@]}"; do wait "$w" || fail "outputs missing"; done
grep -q '"stage":"narrative"' "$tmp/narratives.log" || fail "no narrative"
grep -q '"stage":"tribunal"' "$tmp/verdicts.log" || fail "no verdict"
echo "image-smoke: ok ($img runs as 65532, narrative and verdict under nats-auth.conf)"
