# Benchmarks (the proxy one needs docker; included by the top Makefile, which puts .venv/bin on PATH).
# BENCH_PROXY_ARGS: e.g. `--quick` (UT1 sample only) or `--runs 1 --duration 10`.
BENCH_PROXY_ARGS ?=

.PHONY: bench-proxy

bench-proxy: lab-image  ## Web filter through squid: ours vs squid alone vs squidGuard, sample + 5 M names (~20 min)
	$(BIN)/python tests/bench/proxy_bench.py $(BENCH_PROXY_ARGS)

# The fleet report of every school of the 35 directory (no docker). BENCH_REPORT_ARGS:
# `--browser` also times the page's load in Debian's Chromium; `--directory CSV` another export.
BENCH_REPORT_ARGS ?=
.PHONY: bench-report
bench-report: setup  ## Fleet report of all 421 schools: generation time (target <= 5 s), HTML size
	$(BIN)/python tests/bench/report_bench.py $(BENCH_REPORT_ARGS)
