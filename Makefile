# mig-labeler developer commands. Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench models clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## print the labels of a bundled DGX A100 with mixed MIG profiles (no GPU needed)
	$(BIN)/mig-labeler labels --fixture dgx-a100-mixed --mig-strategy mixed

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check mig_labeler tests tools bench
	$(BIN)/mypy mig_labeler
	@! grep -rn "mock.patch\|patch(\"mig_labeler\|patch('mig_labeler" tests/ || (echo "unittest.mock.patch of our own code is banned" && exit 1)

bench: $(STAMP)
	$(BIN)/python bench/run.py

models:  ## regenerate mig_labeler/data/gpu_models.json from ../shared/spec/mig-profiles.json
	$(BIN)/python tools/gen_gpu_models.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
