"""`python -m dskit` runs the CLI."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (e.g. to list submodules) runs nothing
    sys.exit(main())
