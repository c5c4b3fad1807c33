"""`cartable campaign`: run a playbook school by school over a site, with a status per school.

- schools.py: the schools of the generated inventory and the selection (wave, UAI, failed);
- status.py: the campaign's status.json (format below), written atomically, and the site lock;
- jobs.py: one ansible-runner job per school, its events folded into the school's status;
- relay.py: the same job carried by the school server (transmit | ssh worker | process);
- engine.py: the schools in parallel, the status saved on every change, signals;
- progress.py: the terminal's progress line (schools done/failed/running, waves, time left);
- report.py: the status as a table or CSV, the check-mode summary;
- cli.py: the command line (`cartable campaign run|status`).

docs/campaigns.md describes the command, the status file and the relay design.
"""
