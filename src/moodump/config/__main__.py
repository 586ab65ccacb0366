"""``python -m moodump.config --markdown``: regenerate docs/configuration.md."""

import sys

from moodump.config.docs import main

sys.exit(main())
