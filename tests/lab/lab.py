#!/usr/bin/env python3
"""The Cartable lab's command line: `tests/lab/lab.py COMMAND ...` (see `lab.py --help`).

The code is the package cartable_lab/ at the repository's top (split by concern: engine,
images, model, infra, containers, connection, dhcp, cli); this script only runs its main, so
the Makefile, scripts/test, the docs and tests/lab/verify.yml keep one entry point. The
repository root goes first on sys.path: the package next to this script is the one that runs,
whatever Python (the venv's, or root's python3 without the editable install) runs it.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from cartable_lab.cli import main  # noqa: E402  (after the sys.path fix above)

if __name__ == "__main__":
    sys.exit(main())
