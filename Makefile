# imgembed build and test entry points. `make help` lists them.
SHELL := /bin/bash
GO ?= go
GOROOT := $(shell $(GO) env GOROOT)
WASM := js/dist/imgembed.wasm
PORT ?= 8080

.PHONY: bench-perf bench-wazero bench-peers help build test test-go test-wasm test-js test-www fuzz bench bench-accuracy bench-mem bench-edge bench-native bench-browser bench-cli demo vet clean

help:
	@echo "make build   - build the browser .wasm (+ wasm_exec.js of the same Go)"
	@echo "make test    - the whole test suite (Go, Go under GOOS=js, Node, Chromium)"
	@echo "make demo    - build and serve www/ on http://localhost:$(PORT)"
	@echo "make bench   - benchmarks"
	@echo "make bench-mem - peak/settled memory of a ViT-B/32 load per loader and dtype (BENCHDIR)"
	@echo "make bench-edge - ms per image of the b32l2 fixture in Node, Deno, Bun and workerd"
	@echo "make bench-browser - headless Chromium: imgembed wasm/WebGPU vs onnxruntime-web and transformers.js (peers into /tmp)"
	@echo "make bench-wazero - issue 8's wasm-engine goals: 12 MP preprocess, imgembed --engine wasm vs Node (commands and in process); the forward's boundary at batch 1/8"
	@echo "make bench-cli - the commands end to end over 18 photos (Go native/wasm, Node; transformers.js with TJS=): wall, peak RSS"
	@echo "make bench-accuracy - int8/F16 vs F32 embeddings of ViT-B/32-sized weights (BENCHDIR)"
	@echo "make native-binaries - the imgembed binary for every npm platform package (js/npm/*/bin)"

build: $(WASM)

# npm ci when the lock file is newer than the installed tree (or nothing is
# installed): a fresh clone needs no separate step before make demo/test.
NODE_MODULES := node_modules/.package-lock.json
$(NODE_MODULES): package-lock.json package.json js/package.json
	npm ci --no-audit --no-fund

# Always rebuilt: go's own cache makes this cheap when nothing changed.
.PHONY: $(WASM)
$(WASM):
	@mkdir -p js/dist
	GOOS=js GOARCH=wasm $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o $@ ./wasm
	cp "$(GOROOT)/lib/wasm/wasm_exec.js" js/dist/wasm_exec.js
	cmp -s $@ host/internal/module/imgembed.wasm || cp $@ host/internal/module/imgembed.wasm

# The imgembed binary for the npm platform packages (js/npm/<platform>/bin,
# not committed): static (CGO off), cross-compiled. native-binary builds only
# this machine's, which the Node tests of backend 'native' use.
NATIVE_PLATFORMS := linux-x64:linux:amd64 linux-arm64:linux:arm64 darwin-arm64:darwin:arm64 darwin-x64:darwin:amd64 win32-x64:windows:amd64
.PHONY: native-binaries native-binary
native-binaries:
	@set -e; for p in $(NATIVE_PLATFORMS); do \
	  IFS=: read key goos goarch <<<"$$p"; exe=imgembed; [ $$goos = windows ] && exe=imgembed.exe; \
	  echo "GOOS=$$goos GOARCH=$$goarch -> js/npm/$$key/bin/$$exe"; \
	  CGO_ENABLED=0 GOOS=$$goos GOARCH=$$goarch $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o js/npm/$$key/bin/$$exe ./host/cmd/imgembed; \
	done
native-binary:
	@set -e; goos=$$($(GO) env GOOS); goarch=$$($(GO) env GOARCH); \
	os=$$goos; [ $$os = windows ] && os=win32; arch=$$goarch; [ $$arch = amd64 ] && arch=x64; \
	exe=imgembed; [ $$goos = windows ] && exe=imgembed.exe; \
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o js/npm/$$os-$$arch/bin/$$exe ./host/cmd/imgembed

# The Go files are listed by git (not node_modules, not untracked scratch);
# an empty list would make gofmt read stdin and check nothing.
vet:
	@files=$$(git ls-files '*.go'); test -n "$$files" || { echo "vet: git ls-files lists no Go files (not a git checkout?)"; exit 1; }; \
	bad=$$(gofmt -l $$files); test -z "$$bad" || { echo "gofmt needed:"; echo "$$bad"; exit 1; }
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./wasm/...

test: vet build $(NODE_MODULES) test-go test-wasm test-js test-www fuzz

test-go:
	$(GO) test ./...

# Plain-Go packages compiled into the module, run as GOOS=js under Node.
test-wasm:
	PATH="$(GOROOT)/lib/wasm:$$PATH" GOOS=js GOARCH=wasm $(GO) test ./wasm/... ./weights/...

test-js: build native-binary $(NODE_MODULES)
	npm test --workspace js

# The glob, not the folder: www/test/pages/ holds page scripts, not tests.
test-www: build $(NODE_MODULES)
	@command -v chromium >/dev/null || { echo "test-www needs Debian's chromium: apt-get install chromium (.ci/run does)"; exit 1; }
	node --test www/test/*.test.mjs

# A short run of every fuzz target (go test -fuzz takes one package at a time).
FUZZTIME ?= 15s
fuzz:
	$(GO) test ./weights/safetensors -run '^$$' -fuzz '^FuzzReadHeader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./weights -run '^$$' -fuzz '^FuzzConfigFrom$$' -fuzztime $(FUZZTIME)
	$(GO) test ./wasm/imagefile -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./host/cmd/imgembed -run '^$$' -fuzz '^FuzzEncodeLine$$' -fuzztime $(FUZZTIME)
	$(GO) test ./wasm/tokenizer -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME)

# Soak (not part of make test): for SOAK, the Go API on both engines and the
# Node package embed mixed good and hostile inputs from files and faulty
# local servers, and load models from faulty servers, asserting codes,
# results and flat memory (host/soak_test.go); the figures are logged.
SOAK ?= 60s
soak: build $(NODE_MODULES)
	IMGEMBED_SOAK=$(SOAK) $(GO) test ./host -run '^TestSoak$$' -count 1 -v -timeout 0

# Benchmarks, not timed tests. These machines are noisy: compare medians
# taken in the same run. BENCHCOUNT sets -count of the Go benchmarks.
BENCHCOUNT ?= 5
bench: build
	$(GO) test ./wasm/vit -run '^$$' -bench Forward -benchtime 5x -count $(BENCHCOUNT)
	$(GO) test ./wasm/textmodel -run '^$$' -bench Forward -benchtime 3x -count $(BENCHCOUNT)
	$(GO) test ./host -run '^$$' -bench 'NativeForward|WazeroForward' -benchtime 4x -count $(BENCHCOUNT)
	$(GO) test ./host -run '^$$' -bench 'EndToEnd' -benchtime 2x -count $(BENCHCOUNT)
	$(GO) test ./host -run '^$$' -bench 'ConcurrentCallers' -benchtime 1x -count $(BENCHCOUNT)
	$(GO) test ./host -run '^$$' -bench '^BenchmarkLoad$$' -benchtime 3x -count $(BENCHCOUNT)
	$(GO) test ./wasm/internal/derive -run '^$$' -bench Write -benchtime 20x -count $(BENCHCOUNT)
	$(GO) test ./wasm/ops/native -run '^$$' -bench MatMul -benchtime 20x -count $(BENCHCOUNT)
	$(GO) test ./wasm/ops/native -run '^$$' -bench LayerCold -benchtime 3x -count $(BENCHCOUNT)
	$(GO) test ./wasm/preprocess -run '^$$' -bench 12MP -benchtime 5x -count $(BENCHCOUNT)
	$(GO) test ./host/internal/benchphotos -run '^$$' -bench Prepare -cpu 1,2 -benchtime 5x -count $(BENCHCOUNT)
	PATH="$(GOROOT)/lib/wasm:$$PATH" GOOS=js GOARCH=wasm $(GO) test ./wasm/preprocess -run '^$$' -bench 12MP -benchtime 3x -count $(BENCHCOUNT)
	node js/bench/bench.mjs --threads 1,2 --batches 1,8 --runs 9
	node js/bench/text-bench.mjs --batches 1,16 --runs 7
	$(MAKE) bench-mem
	$(MAKE) bench-edge
	$(MAKE) bench-perf
	$(MAKE) bench-wazero
	$(MAKE) bench-native

# The wazero host's costs and the kernels' vector code: 12 MP preprocess
# under wazero vs natively (bench-wazero has the boundary), wazero's
# WithCloseOnContextDone price, sigmoid/softmax vector vs scalar. CPU time
# is reported beside wall time.
bench-perf: build
	$(GO) test ./host -run '^$$' -bench 'Preprocess12MP' -benchtime 3x -count $(BENCHCOUNT) -timeout 60m
	$(GO) test ./host/internal/gojs -run '^$$' -bench CloseOnContextDone -benchtime 3x -count $(BENCHCOUNT)
	$(GO) test ./wasm/ops/native -run '^$$' -bench Exp -count $(BENCHCOUNT)

# Issue 8's goals for the wasm engine: the 12 MP preprocess through
# `imgembed --engine wasm` within 1.5x of the Node command's time (one
# process per run, and warm in process; prepbench), and the forward's
# wasm/tf boundary under 10 % of the forward at batch 1 (ForwardBoundary:
# the module under wazero interleaved with the same graph on the same
# kernels called directly).
bench-wazero: build $(NODE_MODULES)
	$(GO) run ./host/internal/cmd/prepbench -runs $(BENCHCOUNT)
	$(GO) test ./host -run '^$$' -bench 'ForwardBoundary' -benchtime 5x -count $(BENCHCOUNT) -timeout 60m

# ms per image of the b32l2 fixture in Node, Deno, Bun and workerd.
bench-edge: build $(NODE_MODULES)
	node js/bench/edge.mjs

# ViT-B/32-sized random weights (F32) and their F16/int8 conversions, made
# by the converter at bench time (never committed).
BENCHDIR ?= build/bench
B32 := $(BENCHDIR)/b32.safetensors
WEIGHTS_CMD := $(GO) run ./weights/cmd/imgembed-weights
$(B32):
	@mkdir -p $(BENCHDIR)
	$(WEIGHTS_CMD) synth --preset b32 --seed 1 --out $@
$(BENCHDIR)/b32-f16.safetensors: $(B32)
	$(WEIGHTS_CMD) convert --in $< --dtype f16 --out $@
$(BENCHDIR)/b32-int8.safetensors: $(B32)
	$(WEIGHTS_CMD) convert --in $< --dtype int8 --out $@
B32_ALL := $(B32) $(BENCHDIR)/b32-f16.safetensors $(BENCHDIR)/b32-int8.safetensors

# Peak and settled memory of a ViT-B/32 load per loader (Node, Go host,
# Chromium) and dtype (F32, F16, int8).
# ONNX=FILE adds onnxruntime-node/-web on the same weights (exported and
# installed as ../shared/bench/peers.sh does, into PEERS_DIR).
# TFJS_LAYOUTS=left,right adds Node and Chromium with tfjs-wasm's matMul
# weights on the right (the layout before; XNNPACK then keeps a packed copy).
ONNX ?=
TFJS_LAYOUTS ?= left
bench-mem: build $(NODE_MODULES) $(B32_ALL)
	node js/bench/mem.mjs --dir $(BENCHDIR) --layouts $(TFJS_LAYOUTS) $(if $(ONNX),--onnx $(ONNX))

# The commands end to end, one process per run (start, load, 18 mixed
# photos incl. a 12 MP JPEG): the Go command (native and wasm engines), the
# Node command and, with TJS=.../embed.mjs (../shared/bench/tjs, after its
# setup.sh), transformers.js; wall time, peak RSS, ratio per round.
TJS ?=
bench-cli: build $(NODE_MODULES) $(B32)
	$(GO) run ./host/internal/cmd/clibench -model $(B32) -photos $(BENCHDIR)/photos -runs 3 $(if $(TJS),-tjs $(TJS))

# backend 'native' vs 'wasm' in Node on ViT-B/32-sized weights: ms per image,
# forward alone and end to end from a JPEG, batch 1 and 8, interleaved runs.
bench-native: build $(NODE_MODULES) $(B32)
	node js/bench/native.mjs --model $(B32) --threads 2 --batches 1,8 --runs 7

bench-accuracy: $(B32_ALL)
	@ls -l $(B32_ALL)
	IMGEMBED_ACCURACY_MODEL=$(B32) $(GO) test ./wasm/vit -run '^TestQuantAccuracy$$' -v -timeout 60m

# The Go kernels beside onnxruntime-node/-web on the same weights, back to
# back (needs the peer harness, ../shared/bench/peers.sh by default, and
# Debian's python3-torch for its ONNX export).
PEERS ?= ../shared/bench/peers.sh
bench-peers: $(B32)
	@test -x $(PEERS) || { echo "bench-peers: no peer harness at $(PEERS) (set PEERS=)"; exit 1; }
	$(GO) test ./wasm/vit -run '^$$' -bench Forward -benchtime 5x -count $(BENCHCOUNT)
	$(PEERS) $(B32) 7 "1 2" 1,8
	$(GO) test ./wasm/vit -run '^$$' -bench Forward -benchtime 5x -count $(BENCHCOUNT)
# Headless Chromium: imgembed (wasm 1 and 2 threads, WebGPU) next to
# onnxruntime-web 1.30 and transformers.js 4.3.1 on the same weights as ONNX
# (peers installed into /tmp at bench time; see js/bench/browser.mjs).
bench-browser: build $(NODE_MODULES) $(B32)
	node js/bench/browser.mjs --model $(B32) --threads 1,2 --batches 1,8 --runs 5

demo: build $(NODE_MODULES)
	$(GO) run ./www/cmd/serve --port $(PORT) --weights testdata/models

clean:
	rm -rf js/dist build
