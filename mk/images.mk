# Image builds and deltas (root, mmdebstrap, casync, Debian's mirror; docs/images.md).
# BENCH_IMAGES_ARGS: `--full` for the real cycle images (GBs of packages, ~30 min cold);
# `--reuse --no-rebuild --no-fetch` to continue in the same --work with fewer builds;
# `--point-release [--image cycle1]`: v1 from the release pocket, v2 + updates + security.
BENCH_IMAGES_ARGS ?=

.PHONY: bench-images

bench-images: setup  ## Image deltas: v1 -> v2 bytes, unchanged rebuild, shared store (~5 min warm)
	$(BIN)/python tests/bench/images_bench.py $(BENCH_IMAGES_ARGS)

# Image fetches over a WAN shaped with tc (root; network namespaces wan-*, 10.250.34.0/24):
# a store holding two versions of an image, by default the one `make bench-images` leaves.
# `--latency`: round trips emulated (ADSL 40 ms, satellite 600 ms; userspace relay), the
# fetcher before/after keep-alive (~11 min).
BENCH_IMAGES_WAN_ARGS ?= --store .cache/images-bench/dsi
.PHONY: bench-images-wan
bench-images-wan: setup  ## School caches over shaped ADSL/satellite: WAN bytes v1, v1 -> v2, 2nd school, resume (~6 min)
	$(BIN)/python tests/bench/images_wan_bench.py $(BENCH_IMAGES_WAN_ARGS)

.PHONY: bench-netboot-serve
bench-netboot-serve: setup  ## A school server serving restores to 1, 4, 12 PCs at once (the netboot proof's store; ~1 min)
	$(BIN)/python tests/bench/netboot_serve_bench.py $(BENCH_NETBOOT_SERVE_ARGS)
