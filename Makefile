# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
# Each creates .venv and installs hsd into it on first use. torch is pinned through
# constraints.txt in the same pip command (see README: "Dependencies").
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hsd-installed
EXTRAS ?= dev,aedat4,prophesee,crosscheck,export,live,triton

.PHONY: demo test lint format bench clean docs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hsd demo --out demo-out

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q -m "slow or not slow"

# The documentation site (MkDocs Material + mkdocstrings) into site/; --strict: a broken
# reference or a missing page fails the build. Installs the 'docs' extra on first use.
docs: $(STAMP)
	$(BIN)/python -c "import mkdocs, material, mkdocstrings" 2>/dev/null || \
		$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS),docs]'
	$(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) demo-out bench-out runs site .pytest_cache .ruff_cache
