"""``python -m palot.service``: the service, as ``palot serve`` runs it (clients start it this way)."""

import sys

from .main import main

sys.exit(main())
