"""The errors evtxdoc raises. Each names where it happened and what to do next."""

from __future__ import annotations


class EvtxdocError(Exception):
    """Root of evtxdoc's own errors; the CLI turns these into exit code 2 (InternalError: 3).

    `where` names the file (and offset/line) involved; `hint` is the next step for the user.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class InputError(EvtxdocError):
    """An input path is missing, unreadable or of a kind evtxdoc cannot take."""


class StrictModeError(EvtxdocError):
    """`--strict` was given and the inputs had problems (damaged files, skipped entries)."""


class BackendUnavailableError(EvtxdocError):
    """No EVTX backend could be imported."""


class UsageError(EvtxdocError):
    """An option value evtxdoc cannot use (an unknown time zone, a bad format name)."""


class InternalError(EvtxdocError):
    """What evtxdoc ships is broken (its catalog, its built-in rules): not the user's input.
    The CLI exits 3 and asks for a report to the maintainers."""


class SpecError(EvtxdocError):
    """A YAML text evtxdoc reads is not what it accepts; `line` is 1-based (0: unknown)."""

    def __init__(
        self, message: str, line: int = 0, *, where: str | None = None, hint: str | None = None
    ) -> None:
        self.line = line
        super().__init__(message, where=where, hint=hint)
