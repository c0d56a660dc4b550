# Two commands do all set-up on a fresh machine:
#   make train   - install, then a short training run on the default hub (the one every l4demons command uses)
#   make test    - install (system packages too), then the whole test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# Empty: the default hub, $L4D_HUB or else ~/.local/share/l4demons/hub, as for every later l4demons command.
HUB     ?=
TORCH_VERSION ?= 2.13.0
# PyTorch's CPU build unless an NVIDIA GPU answers (PyPI's Linux wheel is the CUDA build, several GB).
# The CPU build is taken from the index pip already uses when it holds one, else from PyTorch's own CPU index.
GPU     ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
APT_PKGS := stockfish gnuchess-book chromium fonts-dejavu-core
# Test processes (pytest-xdist): most tests wait on child processes, so two run well on two cores.
TEST_JOBS ?= auto

.PHONY: setup torch system-deps train test bench clean

# The compiled search core (src/l4demons/_core) is built by the editable install; a changed source rebuilds it.
$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/l4demons/_core/*.cpp src/l4demons/_core/*.hpp)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(MAKE) --no-print-directory torch
	$(PY) -m pip install -q -e ".[test,plot]"
	touch $@

setup: $(VENV)/.installed

torch:
ifeq ($(GPU),yes)
	@echo "an NVIDIA GPU answers: installing PyTorch $(TORCH_VERSION) with CUDA"
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
else ifeq ($(shell uname -s),Darwin)
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
else
	@echo "no NVIDIA GPU: installing the CPU build of PyTorch $(TORCH_VERSION) (make GPU=yes for the CUDA build)"
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null || \
	  $(PY) -m pip install -q --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"
endif

# Stockfish and the opening book are opponents for Elo measurement and tests only.
system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; fi; \
	fi

train: setup
	$(VENV)/bin/l4demons train $(if $(HUB),--hub $(HUB)) --cycles 2 --games 8

test: setup system-deps
	$(VENV)/bin/pytest -q -n $(TEST_JOBS) --dist loadgroup

clean:
	rm -rf $(VENV) runs .pytest_cache build src/l4demons/_core.*.so
