"""`python -m cartable_lab ...`: the lab's command line (the same as tests/lab/lab.py)."""

import sys

from cartable_lab.cli import main

sys.exit(main())
