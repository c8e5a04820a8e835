# Two commands matter: `make run` and `make test`. Both create .venv and install the project when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv lint screenshots bench package selftest-frozen clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) main.py

# The suite runs in TEST_WORKERS processes (pytest-xdist): 896 tests in 15.7-16.7 min with 2 on a 2-core machine like CI;
# in one process 616 tests took 15 min there. TEST_WORKERS=0 runs it in this process (for a debugger).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n $(TEST_WORKERS) --durations=15

lint: $(STAMP)
	$(PY) -m ruff check tl_desktop tests bench main.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py docs/screenshots
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py docs/screenshots --dark

bench: $(STAMP)
	$(PY) bench/train_throughput.py
	$(PY) bench/inference_latency.py

# The frozen app (docs/packaging.md): PyInstaller from the 'package' extra, onedir build in dist/tl-desktop/.
PACKAGE_STAMP := $(VENV)/.installed-package

$(PACKAGE_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,package]'
	touch $(PACKAGE_STAMP)

package: $(PACKAGE_STAMP)
	@start=$$(date +%s); \
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/tl_desktop.spec && \
	echo "package: built dist/tl-desktop in $$(( $$(date +%s) - start )) s, $$(du -sh dist/tl-desktop | cut -f1)"

selftest-frozen:
	bash packaging/selftest_frozen.sh dist/tl-desktop

clean:
	rm -rf $(VENV) build dist .pytest_cache
