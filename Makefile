# One entry point for the two jobs a new user meets: the demo and the tests.
PYTHON ?= python3

.PHONY: deps demo test lint

deps:            ## install every Debian package and Python dependency (root, idempotent)
	bash scripts/install-deps.sh

demo: deps       ## bring the two-node lab up, break a service, watch the group move
	$(PYTHON) -m gardien.cli lab demo

test:            ## run every test (root: namespaces, mounts and daemons are real)
	$(PYTHON) -m pytest -p no:cacheprovider

lint:
	ruff check . && ruff format --check . && mypy
