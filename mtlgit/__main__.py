import sys

from mtlgit.cli.main import main

sys.exit(main())
