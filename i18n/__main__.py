import sys

from ._extract import main

sys.exit(main())
