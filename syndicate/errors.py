"""One exception tree for syndicate. Foreign exceptions are mapped at the boundary
(``raise SomethingError(...) from e``); everything below derives from ``SyndicateError``.

    SyndicateError
    ├── ConfigError            the config cannot be used; carries every ConfigProblem
    ├── SourceError            one source failed; recorded on the source, never stops a batch
    │   ├── FetchError         retrieval failed (network, HTTP status, limits, local file)
    │   │   ├── HTTPStatusError  the server answered with an error status
    │   │   └── GoneError        410 Gone: polling stops
    │   └── ParseError         the body is not a feed we can read
    └── StoreError             the database refused (schema too new, cannot connect)

"Not modified" is a value (``types.NotModified``), not an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class SyndicateError(Exception):
    """Root of every error syndicate raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None  # 1-based
    key: str  # dotted key path, e.g. "sources[2].interval"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(SyndicateError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SourceError(SyndicateError):
    """A failure of one source, with a message an operator understands."""


class FetchError(SourceError):
    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did


class HTTPStatusError(FetchError):
    pass


class GoneError(HTTPStatusError):
    pass


class ParseError(SourceError):
    pass


class StoreError(SyndicateError):
    pass


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps, nearest first: its args, ``__cause__`` and
    ``__context__``, and urllib3's ``reason``. Libraries wrap the error that tells what
    happened (a refused connection, a full disk) in errors of their own."""
    pending = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        pending += [e for e in linked if isinstance(e, BaseException)]
