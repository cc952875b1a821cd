"""`python -m runbook ...` entry point."""

import sys

from runbook.cli import main

sys.exit(main())
