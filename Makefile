# Two entry points for a new user: `make demo` (set up + build the demo PAD dataset) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv browser java clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The torch/torchvision pair is pinned: it installs from local wheels on our CI machines.
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[test,lint,eval]"
	touch $@

demo: venv
	$(BIN)/pad annotate manifests/demo.yaml
	$(BIN)/pad status out/demo
	$(BIN)/pad verify out/demo
	$(BIN)/pad show out/demo scene_00_jpg --png out/demo-scene_00.png

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# The gallery test drives a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# pad eval's caption metrics (pycocoevalcap's PTB tokenizer and METEOR) run on Java: Debian's headless JRE.
java:
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; }

test: venv browser java
	$(BIN)/python -m pytest -q --timeout=600 -n 2 --dist loadgroup

clean:
	rm -rf out
