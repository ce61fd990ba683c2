"""``python -m vrrpy.daemon``: the same as the ``vrrpyd`` console script."""

import sys

from vrrpy.daemon.main import main

sys.exit(main())
