# Benchmarks that need docker (included by the top Makefile, which puts .venv/bin on PATH).
# BENCH_PROXY_ARGS: e.g. `--quick` (UT1 sample only) or `--runs 1 --duration 10`.
BENCH_PROXY_ARGS ?=

.PHONY: bench-proxy

bench-proxy: lab-image  ## Web filter through squid: ours vs squid alone vs squidGuard, sample + 5 M names (~20 min)
	$(BIN)/python tests/bench/proxy_bench.py $(BENCH_PROXY_ARGS)
