#!/usr/bin/env bash
# The deployment files, offline: helm lint, helm template | kubeconform
# -strict (schemas built from Kubernetes' own OpenAPI document and the KEDA and
# Prometheus Operator CRDs, all from the Go module proxy), the compose file
# through the Compose reference parser, the laptop NATS node config through
# nats-server -t. Installs helm and kubeconform from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gobin=$(go env GOPATH)/bin
export PATH="$PATH:$gobin"
K8S=1.34.0 KEDA=v2.16.1 PROMOP=v0.85.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v helm >/dev/null || go install helm.sh/helm/v3/cmd/helm@v3.22.0
command -v kubeconform >/dev/null || go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0

moddir() { (cd "$tmp" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'); }
k8s=$(moddir k8s.io/kubernetes@v$K8S)
keda=$(moddir github.com/kedacore/keda/v2@$KEDA)
promop=$(moddir github.com/prometheus-operator/prometheus-operator@$PROMOP)
(cd .ci/kschemas && go run . -swagger "$k8s/api/openapi-spec/swagger.json" -out "$tmp/schemas" \
  "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
  "$promop/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml")
kc=(kubeconform -strict -summary -schema-location "$tmp/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json")

chart=docs/deploy/helm/noesis
secrets=(--set nats.password=ci --set provider.apiKey=ci)
helm lint --strict --kube-version $K8S "$chart" "${secrets[@]}"
echo "== helm template | kubeconform -strict: defaults (KEDA on every tier)"
helm template noesis "$chart" --kube-version $K8S "${secrets[@]}" | "${kc[@]}"
echo "== ... a ServiceMonitor, an OpenAI-compatible endpoint (vLLM on Modal), existing Secrets"
helm template noesis "$chart" --kube-version $K8S --set metrics.serviceMonitor.enabled=true \
  --set provider.name=openai --set provider.baseURL=https://example--noesis-vllm-serve.modal.run/v1 \
  --set provider.existingSecret=vllm --set nats.existingSecret=nats-worker | "${kc[@]}"
echo "== ... fixed replicas, no autoscaling, the deep tier off"
helm template noesis "$chart" --kube-version $K8S "${secrets[@]}" --set tiers.fast.autoscaling.enabled=false \
  --set tiers.reasoning.autoscaling.enabled=false --set tiers.reasoning.replicas=3 --set tiers.deep.enabled=false | "${kc[@]}"
echo "== a missing password is refused"
if helm template noesis "$chart" --kube-version $K8S >/dev/null 2>"$tmp/err"; then echo "rendered without a NATS password"; exit 1; fi
grep -q "nats.password" "$tmp/err"

echo "== compose.yaml through compose-go (the Compose reference parser)"
(cd .ci/composecheck && NOESIS_WORKER_PASSWORD=ci NOESIS_ADMIN_PASSWORD=ci NOESIS_AGENT_PASSWORD=ci NOESIS_REVIEWER_PASSWORD=ci \
  go run . "$root/docs/deploy/compose/compose.yaml")
echo "== the laptop NATS node config through nats-server -t"
cp nats-auth.conf docs/deploy/compose/nats-node.conf "$tmp/"
NOESIS_NODE=nats-1 NOESIS_WORKER_PASSWORD=ci NOESIS_ADMIN_PASSWORD=ci NOESIS_AGENT_PASSWORD=ci NOESIS_REVIEWER_PASSWORD=ci \
  nats-server -t -c "$tmp/nats-node.conf"
