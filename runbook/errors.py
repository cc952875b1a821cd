"""The one exception type that means "bad input": exit 2, one clear message, nothing changed."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised for anything the operator must fix before the command can run at all.

    The message names the key, file, endpoint or DSN and what was expected; the CLI prints it
    without a traceback and exits 2.
    """


class TimedOut(BaseException):
    """AWS did not answer within the command's time budget (exit 2, like any unreachable endpoint).

    A BaseException, raised from a SIGALRM handler in the middle of a socket read: botocore wraps any Exception there
    into a retryable HTTPClientError, and the checks that turn one group's BadInput into a FAIL row must not carry
    on after it either. Only the CLI catches it.
    """
