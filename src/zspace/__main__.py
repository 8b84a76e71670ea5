"""``python -m zspace ...`` (and ``torchrun ... -m zspace train ...``): the command line."""

import sys

from zspace.cli.main import main

sys.exit(main())
