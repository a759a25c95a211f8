"""`python -m mlops_operator.plugin`: the same as `kubectl mlops`."""

import sys

from mlops_operator.plugin.cli import main

sys.exit(main())
