import sys

from tl_desktop.cli import main

sys.exit(main())
