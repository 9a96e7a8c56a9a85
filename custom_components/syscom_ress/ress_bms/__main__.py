"""``python -m ress_bms``."""

import sys

from .cli import main

sys.exit(main())
