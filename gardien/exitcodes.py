"""Named exit codes of the ``gardien`` command (one place, so scripts can rely on them)."""

OK = 0
FAILURE = 1  # the action ran and failed
CONFIG_INVALID = 2  # the config (or another input file) is invalid
REFUSED = 3  # a safety gate refused the action; nothing was done
UNREACHABLE = 4  # a hook or agent needed for the action did not answer
ABORTED = 5  # the operator did not confirm
USAGE = 64  # bad command line (EX_USAGE)
