"""Errors a person can act on: one line, naming what is wrong and where."""


class PalisadeError(Exception):
    """Base of every error shown to a user as one line (exit code 2)."""


class ConfigError(PalisadeError):
    """A configuration mistake: `file:line: key: what is wrong`."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{key + ': ' if key else ''}{message}")


class InputError(PalisadeError):
    """An input file that cannot be read at all (missing, unreadable, unknown format)."""
