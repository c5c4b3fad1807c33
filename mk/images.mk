# Image builds and deltas (root, mmdebstrap, casync, Debian's mirror; docs/images.md).
# BENCH_IMAGES_ARGS: `--full` for the real cycle images (GBs of packages, ~30 min cold);
# `--reuse --no-rebuild --no-fetch` to continue in the same --work with fewer builds.
BENCH_IMAGES_ARGS ?=

.PHONY: bench-images

bench-images: setup  ## Image deltas: v1 -> v2 bytes, unchanged rebuild, shared store (~5 min warm)
	$(BIN)/python tests/bench/images_bench.py $(BENCH_IMAGES_ARGS)
