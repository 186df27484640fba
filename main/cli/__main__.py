"""`python -m main.cli`: the `timebank` command."""

import sys

from main.cli import main

sys.exit(main())
