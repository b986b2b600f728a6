#!/usr/bin/env python3
"""Write lib/TapStack.yml (or check that it is up to date with --check)."""

import sys

from tapstack.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
