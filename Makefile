# The two commands of the README: `make run` and `make test`. Everything they need is
# installed into .venv from pyproject.toml, so a fresh clone on a fresh machine just works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint clean test-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/syndicate --config config/syndicate.yaml run

# tests/test_real_clients.py subscribes newsboat (a Debian package, not a Python one) to our
# feeds; on a fresh Debian machine it is installed here (CI runs as root; elsewhere via sudo).
test-tools:
	@command -v newsboat >/dev/null || { \
	  command -v apt-get >/dev/null || { \
	    echo "make test needs newsboat: install it with your package manager" >&2; exit 1; }; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing newsboat for tests/test_real_clients.py"; \
	  apt-cache show newsboat >/dev/null 2>&1 || $$sudo apt-get update -qq; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq newsboat >/dev/null; }

test: $(STAMP) test-tools
	$(BIN)/ruff check syndicate tests bench
	$(BIN)/mypy syndicate
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm
