import sys

from pneumoviewer.cli import main

sys.exit(main())
