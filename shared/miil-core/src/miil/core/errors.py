"""Errors that speak to the user.

A :class:`UserError` is something the user can fix (a missing or unreadable file, an unknown recipe or field, a recipe
that does not fit the data, a value out of range). The ``miil`` command prints it as one line,
``miil <pkg> <verb>: error: <message>``, and exits with status 2; ``--debug`` shows the traceback. Anything else that
escapes a command is a bug and is printed with its traceback (status 1).
"""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_BUG", "EXIT_USER_ERROR", "EXIT_SKIPPED_INPUTS", "MissingExtraError", "UserError"]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USER_ERROR = 2
EXIT_SKIPPED_INPUTS = 3  # the command finished, but some inputs were unreadable and skipped


class UserError(Exception):
    """A mistake in the command line, the data or a file: the message says what, which file or value, what to do."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency group (a package extra, e.g. ``demo``) is not installed.

    Args:
        distribution: The distribution that declares the extra (``"miil-audio"``).
        extra: The extra's name (``"demo"``).
        module: The module that could not be imported.
        purpose: What needs it (``"miil demo audio"``).
    """

    def __init__(self, distribution: str, extra: str, module: str, purpose: str):
        self.distribution, self.extra, self.module = distribution, extra, module
        super().__init__(
            f"{purpose} needs the '{extra}' extra of {distribution} ({module} is not installed): "
            f"pip install '{distribution}[{extra}]'"
        )
