# The proxy benchmark's image (tests/bench/proxy_bench.py): the lab's base image (Debian 12)
# plus squid, squidGuard, the load generator, the origin and a resolver. Nothing is enabled:
# the benchmark starts each program itself, on loopback only (the container has no network).
ARG BASE
FROM ${BASE}
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        squid squidguard wrk nginx-light dnsmasq-base procps \
 && rm -f /usr/sbin/policy-rc.d \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
