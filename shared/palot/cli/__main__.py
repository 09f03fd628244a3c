"""``python -m palot.cli``: the client commands alone (``palot``, the entry point, adds administration)."""

import sys

from .entry import main

sys.exit(main())
