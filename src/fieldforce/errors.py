"""Exceptions that carry one clear sentence for the user.

Everything the user can get wrong (a file, a frame, a key, a unit, a config
value) raises a :class:`FieldforceError` subclass whose message names where the
problem is and what was expected. The CLI prints that message and exits
non-zero; a Python traceback is shown only with ``--debug``.
"""

from __future__ import annotations


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


class DomainWarning(UserWarning):
    """A model is used outside what its training data covered (a stronger field, an
    environment unlike any it was trained on). Issued once per calculator and kind."""
