"""``python -m gatewaysim``: see ``python -m gatewaysim --help``."""

from __future__ import annotations

import sys

from gatewaysim.server import main

sys.exit(main())
