"""Web filtering engine: UT1 lists compiled into one verified binary file, policies, and the
squid external ACL helper that allows a request only on a positive verdict (fail-closed).

- lists.py: read UT1 categories (domains files, usage, symlinked aliases) and normalise names;
- compiled.py: the binary format, compile (deterministic, written by rename), open (verified),
  suffix lookup;
- categories.py: every category UT1 publishes (the site file's policies are checked against it);
- policy.py: a school's policy (blocked categories, allow-list mode, local lists), the verdict;
- helper.py: squid's concurrent external ACL protocol, atomic swap of builds;
- delta.py: nightly deltas between two compiled lists (entries removed/added), byte-exact;
- signing.py: Ed25519 keys and the manifest's detached signature;
- publish.py: `cartable filter publish` on the mirror (verify, compile, deltas, sign);
- fetch.py: `cartable-filter-fetch` on the school server (fetch, verify, swap, status);
- cli.py: `cartable filter compile|check|keygen|publish`.

See docs/filtering.md.
"""
