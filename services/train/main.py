"""Container entry point of the train service: ``volforecast train`` with the VOLF_ settings."""

import sys

from volforecast.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
