import sys

from ocrsft.cli import main

sys.exit(main())
