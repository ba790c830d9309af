"""`python -m pipeline` is the same as the `ltx-batch` console script."""

import sys

from pipeline.cli.main import main

sys.exit(main())
