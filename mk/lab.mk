# The lab (tests/lab/README.md): a school of the lab inventory in containers.
# Included by the top Makefile, which puts .venv/bin on PATH and exports ANSIBLE_CONFIG.
LAB := $(BIN)/python tests/lab/lab.py
LAB_INVENTORY ?= inventories/lab/hosts.yml
# The project's ansible.cfg for molecule too (see .config/molecule/config.yml).
export CARTABLE_ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: lab lab-engine lab-image lab-up lab-converge lab-verify lab-down lab-status \
	lab-dhcp-client lab-dhcp-client-down molecule molecule-roles lab-test lab-bench

lab: lab-up lab-converge lab-verify  ## Bring the lab up, converge it, verify it

lab-engine:  ## Install docker.io/debootstrap if missing, raise inotify limits, start dockerd
	@$(LAB) engine

lab-image: setup  ## Build the lab's Debian 12 systemd images (cached by recipe hash)
	@$(LAB) image

lab-up: setup  ## Create (or keep) the lab's networks and containers
	@$(LAB) up --inventory $(LAB_INVENTORY)

lab-converge: setup  ## playbooks/site.yml on the lab
	@$(LAB) converge --inventory $(LAB_INVENTORY)

lab-verify: setup  ## tests/lab/verify.yml: what the lab proves, with real clients
	@$(LAB) verify --inventory $(LAB_INVENTORY)

lab-down:  ## Remove every container and network the lab made
	@$(LAB) down

lab-status:  ## What the lab made
	@$(LAB) status

lab-dhcp-client: setup  ## Plug a DHCP client (no address) into the pedagogical LAN
	@$(LAB) dhcp-client up

lab-dhcp-client-down:  ## Unplug it
	@$(LAB) dhcp-client down

molecule: molecule-roles  ## Every role's molecule/default scenario

molecule-roles: lab-image  ## Every role's molecule/default scenario, on the lab's base image
	@set -e; export CARTABLE_LAB_IMAGE=$$($(LAB) image-name base); \
	for scenario in roles/*/molecule/default; do \
		[ -d "$$scenario" ] || continue; role=$${scenario%/molecule/default}; \
		echo "=== molecule: $$role"; start=$$SECONDS; \
		(cd "$$role" && molecule test) || exit 1; \
		echo "=== molecule: $$role: $$((SECONDS - start)) s"; \
	done


lab-test: lab-image  ## The whole school, converged once: up twice, down/up, converge, idempotence, check mode, verify, DHCP client
	$(BIN)/pytest tests/lab

lab-bench: lab-image  ## Benchmark: no-op converge of N workstations, project ansible.cfg vs stock
	$(BIN)/python tests/bench/lab_bench.py
