"""Exceptions that carry one clear sentence for the user.

Everything the user can get wrong (a file, a frame, a key, a unit, a config
value) raises a :class:`FieldforceError` subclass whose message names where the
problem is and what was expected. :func:`report_errors` is the one boundary that
turns them into a line on stderr and a non-zero exit, for the ``fieldforce`` command
and the ``python -m fieldforce.datasets.make_*`` scripts alike; a Python traceback is
shown only with ``--debug`` (or ``FIELDFORCE_DEBUG=1``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


class FieldforceError(Exception):
    """Base class of all user-facing errors."""


class UnitError(FieldforceError, ValueError):
    """An unknown unit string, or a unit of the wrong dimension."""


class DataError(FieldforceError, ValueError):
    """Bad data in a structure file: missing key, wrong shape, NaN, ...

    The message always names the file and, where it applies, the frame index and
    the key, e.g. ``water.xyz, frame 12, key 'mu': expected 3 numbers, got 9``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        frame: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path, self.frame, self.key, self.reason = path, frame, key, message
        where = []
        if path is not None:
            where.append(str(path))
        if frame is not None:
            where.append(f"frame {frame}")
        if key is not None:
            where.append(f"key '{key}'")
        super().__init__((", ".join(where) + ": " if where else "") + message)


class ConfigError(FieldforceError, ValueError):
    """A bad configuration file or command-line option."""


class BackendError(FieldforceError, RuntimeError):
    """A reference (DFT) backend is missing or failed to produce a result."""


@contextlib.contextmanager
def in_file(path) -> Iterator[None]:
    """A :class:`DataError` raised inside that names no file gets ``path`` (e.g. an
    analysis of arrays read from a trajectory: the arrays do not know their file)."""
    try:
        yield
    except DataError as exc:
        if exc.path is not None:
            raise
        raise DataError(exc.reason, path=str(path)) from None


class DomainWarning(UserWarning):
    """A model is used outside what its training data covered (a stronger field, an
    environment unlike any it was trained on). Issued once per calculator and kind."""


def report_errors(prog: str, run: Callable[[], int | None], debug: bool | None = None,
                  interrupted: str = "") -> int:
    """Run a command's body and return its exit code, user errors as one line.

    A :class:`FieldforceError` or an ``OSError`` (a path that cannot be read or written)
    is printed as ``"{prog}: error: ..."`` on stderr and gives exit code 2; Ctrl-C gives
    ``"{prog}: interrupted{interrupted}"`` (say how to continue) and 130. ``debug``
    (default: the ``FIELDFORCE_DEBUG`` environment variable) re-raises instead.
    """
    if debug is None:
        debug = os.environ.get("FIELDFORCE_DEBUG", "") not in ("", "0")
    try:
        return int(run() or 0)
    except FieldforceError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted{interrupted}", file=sys.stderr)
        return 130
