"""`python -m clusterkit ...` is the `clusterkit` command."""
import sys

from .cli import main

sys.exit(main())
