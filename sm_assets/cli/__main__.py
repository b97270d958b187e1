"""`python -m sm_assets.cli`: the same as the `sm-assets` console script."""

import sys

from sm_assets.cli import main

sys.exit(main())
