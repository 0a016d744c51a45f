import sys

from spart.cli import main

sys.exit(main())
