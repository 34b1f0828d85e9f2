# Every target creates .venv itself on a machine with only python3 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: install run demo test check lint format typecheck bench bench-quick openapi clean

# `make run` installs what serving needs (risk scoring included); every other target adds the
# dev and bench extras.
$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[risk]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

PORT ?= 8000

# The open banking issuer and DPoP URLs, and the origin passkeys are accepted from, name the
# port served unless the variables say otherwise.
run: $(RUN_STAMP)
	$(BIN)/strongroom db upgrade
	STRONGROOM_PUBLIC_BASE_URL="$${STRONGROOM_PUBLIC_BASE_URL:-http://localhost:$(PORT)}" \
	STRONGROOM_WEBAUTHN_ORIGINS="$${STRONGROOM_WEBAUTHN_ORIGINS:-http://localhost:$(PORT)}" \
		$(BIN)/strongroom serve --dev-key --risk --port $(PORT)

demo: $(RUN_STAMP)
	$(BIN)/strongroom demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src examples

format: $(STAMP)
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/strongroom bench ledger
	$(BIN)/strongroom bench http
	$(BIN)/strongroom bench audit

bench-quick: $(STAMP)
	$(BIN)/strongroom bench ledger --quick
	$(BIN)/strongroom bench http --quick
	$(BIN)/strongroom bench audit --quick

# strongroom.db* is the database and what belongs to it alone: its WAL, its keyring and
# development master key (useless without it), its rate-limit, DPoP replay and writer-lock files.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache strongroom.db*
