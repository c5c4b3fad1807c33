# Cartable — the two commands a newcomer needs are `make demo` and `make test` (see README).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup demo test unit lint inventory-demo syntax bench-inventory

setup:  ## Create .venv with the pinned Python tools
	@scripts/bootstrap

inventory-demo: setup  ## Rebuild the demo inventory from the real school directory
	$(BIN)/cartable inventory build inventories/demo/site.yml

demo: inventory-demo syntax lab-up lab-converge lab-verify  ## Set up, build the demo inventory, converge the lab school
	@echo "demo: the lab school is up and converged (make lab-down removes it)"

syntax: setup  ## Syntax-check every playbook against the demo inventory
	@for p in playbooks/*.yml; do $(BIN)/ansible-playbook --syntax-check "$$p" || exit 1; done

unit: setup  ## Python unit and property tests
	$(BIN)/pytest

lint: setup  ## yamllint (strict) and ansible-lint (production profile, offline)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --offline --profile production

test:  ## Everything CI runs: lint, unit tests, molecule, the lab (installs what it needs)
	@scripts/test

bench-inventory: setup  ## Inventory of every school of the 35 directory: build and load times
	$(BIN)/python tests/bench/inventory_bench.py

-include mk/*.mk
