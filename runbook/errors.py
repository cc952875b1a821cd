"""The one exception type that means "bad input": exit 2, one clear message, nothing changed."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised for anything the operator must fix before the command can run at all.

    The message names the key, file, endpoint or DSN and what was expected; the CLI prints it
    without a traceback and exits 2.
    """
