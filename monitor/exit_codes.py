"""The exit statuses of every ``monitor`` command (the README's "Exit statuses" table).

Declared once, so cron jobs and CI can tell "bad invocation" from "bad data" from "broken".
"""

from __future__ import annotations

EXIT_OK = 0
# The command could not do its work: e.g. no broker within --connect-timeout.
EXIT_FAILURE = 1
# Bad flags or values, an input or registry file that cannot be used, an unwritable output
# (argparse's own status for usage errors).
EXIT_USAGE = 2
# The command ran but read nothing valid, or rejected more than --max-reject-ratio of its lines.
EXIT_NO_VALID_DATA = 3
# SIGINT (Ctrl-C): 128 + 2, as a shell reports it.
EXIT_INTERRUPTED = 130
