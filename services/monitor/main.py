"""Container entry point of the monitor service: ``volforecast monitor`` with the VOLF_ settings."""

import sys

from volforecast.cli import main

if __name__ == "__main__":
    sys.exit(main(["monitor", *sys.argv[1:]]))
