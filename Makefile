# mqbench build, test and run entry points. `make test` is the one test command (CI
# calls it); `make run` is the main job. Both install what they need on Debian.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/mqbench
# Packages the tests need: the real broker and its command-line clients,
# chromium (report.html and compare.html are checked in a headless browser) and
# openssl; Node.js and npm for the mqtt.js interop tests (internal/interop).
DEB_PKGS := mosquitto mosquitto-clients chromium openssl nodejs npm
# MQTTJS is the pinned mqtt.js the interop tests run (package-lock.json);
# npm ci installs it when the lock file is newer than the installed tree.
MQTTJS   := internal/interop/mqttjs

.PHONY: all build deps debs test test-short lint run baseline gate fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mqbench

# deps installs DEB_PKGS when one of them is missing (Debian, as root), then
# the interop tests' npm packages.
deps: debs $(MQTTJS)/node_modules/.package-lock.json

debs:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] || ! command -v mosquitto_pub >/dev/null 2>&1 \
		|| ! command -v chromium >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 \
		|| ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "installing $(DEB_PKGS)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEB_PKGS); \
	fi

$(MQTTJS)/node_modules/.package-lock.json: $(MQTTJS)/package-lock.json | debs
	cd $(MQTTJS) && npm ci --no-audit --no-fund

# staticcheck is pinned and fetched through the module proxy like any module.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# test: the whole suite with the race detector. Mosquitto, browser and Node.js
# tests skip when mosquitto, chromium or node (and mqtt.js) are absent unless
# MQBENCH_REQUIRE_MOSQUITTO=1, MQBENCH_REQUIRE_CHROMIUM=1 and
# MQBENCH_REQUIRE_NODE=1 (set by .ci/run; CI=true requires chromium too), so
# deps runs first.
test: deps lint
	PATH="$$PATH:/usr/sbin" $(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 ./...

# run: the main job, the classic experiment on the bundled broker.
run: build
	$(BIN) run persist-3s

# gate: the CI regression gate: persist-quick on the bundled broker and on
# Mosquitto, each checked against its committed baseline (exit 3 on regression).
gate: build deps
	rm -rf runs/gate
	PATH="$$PATH:/usr/sbin" $(BIN) run persist-quick --broker bundled --no-progress --out runs/gate/bundled
	$(BIN) check runs/gate/bundled --baseline reports/baselines/persist-quick-bundled.json
	PATH="$$PATH:/usr/sbin" $(BIN) run persist-quick --broker mosquitto --no-progress --out runs/gate/mosquitto
	$(BIN) check runs/gate/mosquitto --baseline reports/baselines/persist-quick-mosquitto.json

# baseline refreshes the committed baselines from fresh persist-quick runs. Do it
# when a change is meant to alter persistence behaviour, and commit the result.
baseline: build deps
	rm -rf runs/baseline
	PATH="$$PATH:/usr/sbin" $(BIN) run persist-quick --broker bundled --no-progress --out runs/baseline/bundled
	PATH="$$PATH:/usr/sbin" $(BIN) run persist-quick --broker mosquitto --no-progress --out runs/baseline/mosquitto
	cp runs/baseline/bundled/summary.json reports/baselines/persist-quick-bundled.json
	cp runs/baseline/mosquitto/summary.json reports/baselines/persist-quick-mosquitto.json

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 60s ./broker/persist/
	$(GO) test -run '^$$' -fuzz FuzzPacketReader -fuzztime 60s ./broker/

bench: deps
	PATH="$$PATH:/usr/sbin" $(GO) test -run '^$$' -bench . -benchtime 1x ./...

clean:
	rm -rf bin runs
