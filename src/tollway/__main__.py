import sys

from tollway.cli.main import main

sys.exit(main())
