"""`python -m stratexec` is the `stratexec` command."""

import sys

from stratexec.cli import main

sys.exit(main())
