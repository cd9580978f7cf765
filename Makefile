# The two commands of the README: `make run` and `make test`. Everything they need is
# installed into .venv from pyproject.toml, so a fresh clone on a fresh machine just works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/syndicate --config config/syndicate.yaml run

test: $(STAMP)
	$(BIN)/ruff check syndicate tests bench
	$(BIN)/mypy syndicate
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm
