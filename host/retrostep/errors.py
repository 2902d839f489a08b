"""One exception base for the host tool; the CLI turns it into a message and exit code."""


class RetrostepError(Exception):
    """A failure the user can act on. ``str(err)`` is the whole one-line message."""

    exit_code = 1


class TraceError(RetrostepError):
    """A trace or ground-truth file that cannot be used as it is (names file and line)."""

    exit_code = 2


class UsageProblem(RetrostepError):
    """A command-line request that cannot be met as given (exit code 2, like click's)."""

    exit_code = 2


class RuntimeUnavailable(RetrostepError):
    """The requested pipeline runtime (e.g. the MicroPython unix port) cannot be started."""

    exit_code = 3
