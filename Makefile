# The README's two commands are `make run` and `make test`; .ci/run calls `make test`.
SHELL := /bin/bash
UV := PATH="$(CURDIR)/.tools/bin:$$PATH" uv
CONFIG ?=
# uv trusts the system's CA store (Debian's ca-certificates), as apt and git do.
export UV_SYSTEM_CERTS ?= 1

.PHONY: setup run test lint typecheck pytest soak proto wheels bench

setup:
	@scripts/setup.sh

## Start the daemon in the foreground with working defaults.
run: setup
	$(UV) run --frozen crid serve --init-defaults $(if $(CONFIG),--config $(CONFIG))

## The whole test suite: lint, format check, type check, every test (root tests included).
test: setup lint typecheck pytest

lint:
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck:
	$(UV) run --frozen mypy

pytest:
	CRID_STRICT_TESTS=1 $(UV) run --frozen pytest -q $(PYTEST_ARGS)

## The long fault tier (docs/reliability.md): every SIGTERM case and the pod churn soak,
## SOAK_MINUTES long (default 60). Not part of `make test`.
SOAK_MINUTES ?= 60
soak: setup
	CRID_SOAK=1 CRID_STRICT_TESTS=1 SOAK_MINUTES=$(SOAK_MINUTES) $(UV) run --frozen pytest -q -s -m soak tests/faults $(PYTEST_ARGS)

## Regenerate the CRI and NRI bindings from the protos beside them (crid/_cri, crid/_nri).
proto:
	$(UV) run --frozen python scripts/gen_proto.py

wheels:
	$(UV) build --all-packages --wheel -o dist

## Every benchmark, each printing crid's numbers beside its reference's (needs root).
bench: setup
	@for script in bench/*/*.py; do echo "== $$script"; $(UV) run --frozen python $$script || exit 1; done
