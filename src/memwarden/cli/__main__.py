"""`python -m memwarden.cli`: the `memwarden` command, for the stack's child processes and tests."""

import sys

from . import main

sys.exit(main())
