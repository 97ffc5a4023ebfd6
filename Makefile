# noesis: two commands do all set-up on a machine with Go:
#   make run    start the service on its embedded defaults
#   make test   run the whole test suite (with -race)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# adaptivestackstart=0: new goroutines start with Go's smallest stack, not the
# average of those already running. A worker at 1,000 thoughts/s holds ~16,000
# goroutines parked in model calls, whose stacks grew deep once (the OpenAI
# client, JSON, HTTP); started at their average, every new goroutine took that
# size too. Measured: peak RSS 825 -> 706 MB, latency unchanged
# (docs/performance.md). GODEBUG has no //go:debug directive for it, so it is
# the binary's default GODEBUG, set at link time; GODEBUG in the environment
# still wins.
LDFLAGS := -X main.version=$(VERSION) -X runtime.godebugDefault=adaptivestackstart=0
BIN     := bin/noesis

GOBIN   := $(shell $(GO) env GOPATH)/bin
NATS_SERVER := $(GOBIN)/nats-server
NATS_CLI    := $(GOBIN)/nats
CHAOS_N ?= 5000

.PHONY: all build run sim test vet lint fmt fmt-check smoke chaos chaos-short chaos-auth node-agent image image-smoke deploy-check fuzz tools bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/noesis

## run: the service with an embedded NATS server (127.0.0.1:4222, ./data) and,
## without NEBIUS_API_KEY, the built-in simulator. Settings: .env and the environment.
## The simulator runs at 0.3 x the real models' pace unless NOESIS_SIM_LATENCY_SCALE
## is set there, so a newcomer's first verdict comes in ~5 s, not 10-20 s.
run: build
	@if [ -z "$$NOESIS_SIM_LATENCY_SCALE" ] && ! grep -qs '^NOESIS_SIM_LATENCY_SCALE=' .env; then export NOESIS_SIM_LATENCY_SCALE=0.3; fi; \
	./$(BIN) serve

## sim: the simulator alone on 127.0.0.1:8090.
sim: build
	./$(BIN) sim

test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## lint: staticcheck, from the Go module proxy.
lint:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(GOBIN)/staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## tools: the real NATS programs the smoke and chaos runs use, from the Go module proxy.
tools: $(NATS_SERVER) $(NATS_CLI)
$(NATS_SERVER):
	$(GO) install github.com/nats-io/nats-server/v2@v2.15.2
$(NATS_CLI):
	$(GO) install github.com/nats-io/natscli/nats@v0.5.0

## chaos: kill -9, SIGTERM, NATS restart, cluster leader loss, provider faults,
## cold-cache coalescing; real processes; prints the table in the README.
chaos: build tools
	$(GO) run ./cmd/chaos -noesis $(BIN) -nats-server $(NATS_SERVER) -n $(CHAOS_N)

## chaos-short: the same scenarios with fewer thoughts (CI).
chaos-short: build tools
	$(GO) run ./cmd/chaos -noesis $(BIN) -nats-server $(NATS_SERVER) -n 300

## chaos-auth: the short scenarios under the shipped nats-auth.conf (workers as
## its worker user, the harness as admin).
chaos-auth: build tools
	$(GO) run ./cmd/chaos -noesis $(BIN) -nats-server $(NATS_SERVER) -n 300 -auth nats-auth.conf

## bench: Go benchmarks of the hot paths (BenchmarkInFlight: memory per call in
## flight), the models against the simulator, the tribunal, and the pipeline with
## the defaults beside the hand-tuned worker, BENCH_RUNS runs each where a goal is
## measured, with the nats bench ceiling, the JetStream floor (zero and cache
## modes) and the client floor (go-openai alone, a worker process of its own whose
## peak RSS is the memory floor; seed and zero modes) on the same machine (the seed runs after a 30 s warm-up, the rate growing from 0: a worker's
## steady state, its cold start printed beside): each run prints its goals
## beside their floors, noesis's figure as a
## ratio of each. Then a burst of 1,000 thoughts against a provider that
## generates 64 answers at once and queues the rest. Charts in docs/.
## docs/performance.md reads them.
BENCH_RUNS ?= 3
PIPELINE := ./$(BIN) bench pipeline --env-file /dev/null --sequential 0
bench: build tools
	$(GO) test -run '^$$' -bench . -benchmem ./pipeline/ ./pipeline/answer/ ./router/ ./router/sim/
	./$(BIN) bench models --env-file /dev/null --all --calls 3
	./$(BIN) bench tribunal --env-file /dev/null --repeat 8 --rate 100
	./$(BIN) bench tribunal --env-file /dev/null --repeat 3 --rate 100 --rate-limit-first 2
	@for i in $$(seq $(BENCH_RUNS)); do \
	  $(PIPELINE) --mode seed --n 10000 --rate 1000 --warmup 30s --ceiling=false || exit 1; \
	  $(PIPELINE) --mode seed --n 10000 --rate 1000 --warmup 30s --ceiling=false --http 1.1 || exit 1; \
	  PATH="$$PATH:$(GOBIN)" $(PIPELINE) --mode zero --n 5000 --rate 1000 --ceiling=false --chart docs/bench-zero.svg || exit 1; \
	  $(PIPELINE) --mode zero --n 20000 --ceiling=false || exit 1; \
	  PATH="$$PATH:$(GOBIN)" $(PIPELINE) --mode cache --n 20000 --chart docs/bench-cache.svg || exit 1; \
	done
	$(PIPELINE) --mode seed --n 10000 --rate 1000 --ceiling=false --concurrency 2200
	$(PIPELINE) --mode seed --n 10000 --rate 1000 --ceiling=false --concurrency 2200 --http 1.1
	NOESIS_SHARED_CACHE=false $(PIPELINE) --mode zero --n 5000 --rate 1000 --ceiling=false
	$(PIPELINE) --mode zero --n 500 --rate 100 --ceiling=false
	$(PIPELINE) --mode seed --n 3000 --rate 1000 --provider-rps 600 --ceiling=false
	$(PIPELINE) --mode seed --n 1500 --rate 100 --concurrency 64 --workers 1 --ceiling=false
	$(PIPELINE) --mode seed --n 1500 --rate 100 --concurrency 64 --workers 2 --ceiling=false
	$(PIPELINE) --mode seed --n 1000 --provider-capacity 64 --ceiling=false
	./$(BIN) bench pipeline --env-file /dev/null --mode seed --n 10000 --rate 1000 --sequential 10 --ceiling=false --chart docs/bench-seed.svg

## fuzz: the thought decoder, its quotation in prompts, the judge-answer parser and the PubAck reader, FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./pipeline -run '^$$' -fuzz '^FuzzDecodeThought$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline -run '^$$' -fuzz FuzzQuoteThought -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline -run '^$$' -fuzz FuzzDecodeThoughtAsEncodingJSON -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/answer -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./consumers -run '^$$' -fuzz FuzzReadPubAckAsJetStream -fuzztime $(FUZZTIME)

## smoke: the built binary end to end: serve, publish, and wait for both outputs.
smoke: build tools
	PATH="$$PATH:$(GOBIN)" ./.ci/smoke.sh

## image: the container image noesis:$(VERSION) (and :latest), with buildah
## (Debian's package; no daemon): a static binary without the bench harness and
## the embedded NATS server, on scratch, as user 65532. image-smoke checks its
## size, user and version, and runs it against nats-server under nats-auth.conf.
IMAGE   ?= noesis
BUILDAH ?= buildah --storage-driver vfs
image:
	@command -v buildah >/dev/null || { echo "make image needs buildah (apt-get install buildah)"; exit 1; }
	rm -rf bin/image && mkdir -p bin/image
	CGO_ENABLED=0 $(GO) build -trimpath -tags nobench,noembed -ldflags "-s -w $(LDFLAGS)" -o bin/image/noesis ./cmd/noesis
	cp /etc/ssl/certs/ca-certificates.crt bin/image/
	$(BUILDAH) bud --isolation chroot --layers=false -f docs/deploy/Containerfile --build-arg VERSION=$(VERSION) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest bin/image

image-smoke: image tools
	PATH="$$PATH:$(GOBIN)" IMAGE=$(IMAGE):$(VERSION) VERSION=$(VERSION) ./.ci/image-smoke.sh

## deploy-check: the Helm chart (helm lint, helm template | kubeconform -strict),
## the compose file (compose-go) and the laptop NATS config (nats-server -t),
## offline; installs helm and kubeconform from the Go module proxy.
deploy-check: tools
	PATH="$$PATH:$(GOBIN)" ./.ci/deploy-check.sh

## node-agent: the Node.js agent example (docs/agents/node) against a real
## noesis serve under nats-auth.conf, and the AsyncAPI document through the
## official parser. Needs node and npm.
node-agent: build tools
	PATH="$$PATH:$(GOBIN)" ./.ci/node-agent.sh

clean:
	rm -rf bin data
