"""The ``fox`` command line."""

import time

#: When this ``fox`` started: whatever ended before it (a request of the
#: command line before) is stored by :data:`~kubefox.cli.telemetry.SETTLE_SECONDS` later.
STARTED_AT = time.time()
