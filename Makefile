# A thin veneer over the `ocrsft` CLI: every target calls one subcommand.
# `make setup` is idempotent; `make demo` and `make test` depend on it.

PY        ?= python3.11
VENV      ?= .venv
BIN       := $(VENV)/bin
OCRSFT    := $(BIN)/ocrsft
STAMP     := $(VENV)/.ocrsft-setup
TORCH     := $(VENV)/.ocrsft-setup-torch
EVENV     ?= .venv-erniekit
ERNIE     := $(EVENV)/.ocrsft-setup-erniekit
ERNIE_ROOT ?= ../shared/vendor/ERNIE-aef7dbe
RUN       ?=
CONFIG    ?=
PORT      ?= 6006
IMAGE     ?= ocrsft:gpu
DATA      ?=
MODEL     ?=


.PHONY: help setup setup-torch setup-erniekit demo pretrain-tiny test test-fast tiny-model convert validate plan train export \
        infer parity eval compare tensorboard bench docker-build docker-train docker-infer clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "	"

$(STAMP): pyproject.toml requirements.lock ocrsft/install.py
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python ocrsft/install.py --venv $(VENV)
	@touch $(STAMP)

setup: $(STAMP) ## create .venv with pinned paddle, paddleformers, paddleocr (+ workarounds)

$(TORCH): $(STAMP) requirements-torch.lock
	$(BIN)/python ocrsft/install.py --venv $(VENV) --extra torch
	@touch $(TORCH)

setup-torch: $(TORCH) ## add the PyTorch bridge extras (CPU torch, transformers, peft; no torchvision)

$(ERNIE): requirements-erniekit.lock ocrsft/install.py erniekit_ext/compat.py
	@test -x $(EVENV)/bin/python || $(PY) -m venv $(EVENV)
	$(EVENV)/bin/python ocrsft/install.py --venv $(EVENV) --extra erniekit --ernie-root $(ERNIE_ROOT)
	@touch $(ERNIE)

setup-erniekit: $(ERNIE) ## create .venv-erniekit: ERNIEKit's own pins + ERNIE built from ERNIE_ROOT (engine: erniekit)

demo: setup ## the main job: teach a tiny PaddleOCR-VL to read, on CPU, offline
	$(OCRSFT) demo --out runs/demo

pretrain-tiny: setup ## rebuild the demo's base checkpoint in assets/ (seeded, ~30 min on 2 cores)
	$(OCRSFT) pretrain-tiny --out runs/pretrain-tiny

test: setup-torch setup-erniekit ## run the test suite (tiny models + ../shared/data; the bridge tests need torch, engine erniekit its venv)
	$(BIN)/python -m pytest -q tests

test-fast: setup-torch ## every test not marked slow (no training, no paddlex pipeline), in about a minute
	$(BIN)/python -m pytest -q -m "not slow" tests

tiny-model: setup ## build a tiny random PaddleOCR-VL: make tiny-model OUT=dir [VERSION=1|1.5|1.6]
	$(OCRSFT) tiny-model $(or $(OUT),runs/tiny-model) $(if $(VERSION),--version $(VERSION))

convert: setup ## make convert FORMAT=paddleocr-rec INPUT=labels.txt OUT=train.jsonl [ARGS=...]
	$(OCRSFT) convert $(FORMAT) $(INPUT) -o $(OUT) $(ARGS)

validate: setup ## make validate DATA=train.jsonl
	$(OCRSFT) validate $(DATA) $(ARGS)

plan: setup ## make plan CONFIG=configs/...yaml [ARGS="--gpus 8"]
	@test -n "$(CONFIG)" || { echo "make plan: error: CONFIG is not set (make plan CONFIG=configs/...yaml)" >&2; exit 2; }
	$(OCRSFT) plan $(CONFIG) $(ARGS)

train: setup ## make train CONFIG=configs/...yaml [ARGS=--resume] [NPROC_PER_NODE=N] (NNODES, NODE_RANK, MASTER_ADDR/PORT: several nodes)
	@test -n "$(CONFIG)" || { echo "make train: error: CONFIG is not set (make train CONFIG=configs/...yaml)" >&2; exit 2; }
	$(OCRSFT) train $(CONFIG) $(ARGS)

export: setup ## make export RUN=runs/x OUT=runs/x/export
	$(OCRSFT) export $(RUN) -o $(or $(OUT),$(RUN)/export) $(ARGS)

infer: setup ## make infer MODEL=dir DATA=val.jsonl OUT=pred.jsonl
	$(OCRSFT) infer $(MODEL) --data $(DATA) -o $(OUT) $(ARGS)

parity: setup ## make parity MODEL=dir DATA=val.jsonl [ARGS="--samples 32"]
	$(OCRSFT) parity $(MODEL) --data $(DATA) $(ARGS)

eval: setup ## make eval PRED=pred.jsonl
	$(OCRSFT) eval $(PRED) $(ARGS)

compare: setup ## make compare BASE=base.jsonl SFT=sft.jsonl
	$(OCRSFT) compare $(BASE) $(SFT) $(ARGS)

tensorboard: setup ## make tensorboard RUN=runs/x
	$(BIN)/tensorboard --logdir $(or $(RUN),runs) --port $(PORT) --bind_all

bench: setup ## run every benchmark under bench/
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

docker-build: ## build the GPU image (Paddle 3.x GPU base + ERNIE checkout)
	docker build -f docker/Dockerfile -t $(IMAGE) .

docker-train: ## make docker-train CONFIG=configs/...yaml
	@test -n "$(CONFIG)" || { echo "make docker-train: error: CONFIG is not set" >&2; exit 2; }
	docker run --gpus all --rm --shm-size=64g --network=host \
	  -e NPROC_PER_NODE -e NNODES -e NODE_RANK -e MASTER_ADDR -e MASTER_PORT \
	  -v $(CURDIR):/workspace/ocrsft -w /workspace/ocrsft $(IMAGE) \
	  ocrsft train $(CONFIG) $(ARGS)

docker-infer: ## make docker-infer MODEL=dir DATA=val.jsonl OUT=pred.jsonl
	docker run --gpus all --rm -v $(CURDIR):/workspace/ocrsft -w /workspace/ocrsft $(IMAGE) \
	  ocrsft infer $(MODEL) --data $(DATA) -o $(OUT) $(ARGS)

clean:
	rm -rf runs .pytest_cache
