# noesis: two commands do all set-up on a machine with Go:
#   make run    start the service on its embedded defaults
#   make test   run the whole test suite (with -race)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/noesis

.PHONY: all build run sim test vet fmt fmt-check smoke clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/noesis

## run: the service with an embedded NATS server (127.0.0.1:4222, ./data) and,
## without NEBIUS_API_KEY, the built-in simulator. Settings: .env and the environment.
run: build
	./$(BIN) serve

## sim: the simulator alone on 127.0.0.1:8090.
sim: build
	./$(BIN) sim

test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## smoke: the built binary end to end: serve, publish, and wait for both outputs.
smoke: build
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" ./.ci/smoke.sh

clean:
	rm -rf bin data
