"""One year of connection history on the school server (issue 8).

Runs ON THE SCHOOL SERVER: Python 3.11, standard library only (plus `cartable.errors`).

- `cartable-history-logger` (`logger.py`): squid's `logfile_daemon`; writes one file per local
  day, each squid line enriched with the workstation's MAC and name (`formats.py`, `hosts.py`).
- `cartable-history seal|verify|purge|report` (`cli.py`): chain closed days by hash
  (`chain.py`), purge after the retention period, the a-posteriori control (`report.py`).

See docs/history.md.
"""
