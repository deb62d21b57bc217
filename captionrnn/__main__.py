import sys

from captionrnn.cli import main

sys.exit(main())
