# Two commands do all set-up on a fresh machine:
#   make train   - install, then a short training run on the local hub
#   make test    - install (system packages too), then the whole test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
HUB     ?= runs/hub
# The CPU build of PyTorch; on a GPU machine `pip install -e .` takes a CUDA build instead.
TORCH   ?= torch==2.13.0
APT_PKGS := stockfish gnuchess-book chromium fonts-dejavu-core

.PHONY: setup system-deps train test bench clean

# The compiled search core (src/l4demons/_core) is built by the editable install; a changed source rebuilds it.
$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/l4demons/_core/*.cpp src/l4demons/_core/*.hpp)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,plot]"
	touch $@

setup: $(VENV)/.installed

# Stockfish and the opening book are opponents for Elo measurement and tests only.
system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; fi; \
	fi

train: setup
	$(VENV)/bin/l4demons train --hub $(HUB) --cycles 2 --games 8

test: setup system-deps
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache build src/l4demons/_core.*.so
