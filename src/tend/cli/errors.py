"""The one error type CLI commands raise; ``run`` prints it as a single line."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report to the user as one line, with an exit code."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        """Create the error.

        Args:
            message: What went wrong and, ideally, what to do.
            exit_code: Process exit status.
        """
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
