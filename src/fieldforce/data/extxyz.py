"""Where the frames of an extended XYZ file begin and end, and what is wrong where one
does not parse.

ASE reads extxyz files; when it fails its message names neither the frame nor the line
(``KeyError: 'Xx'``, a whole comment line, ``could not convert string to float``).
:func:`scan` walks the file line by line the way the format is laid out (an atom count,
a comment line with ``Properties=``, one line per atom with the declared columns) and
returns the frames that are complete and the first problem, with its frame and line:

* a count line that is not a non-negative integer;
* fewer lines than the count promises (``truncated``: a file cut short, e.g. a run
  killed while writing its last frame);
* an atom line with the wrong number of columns, a value that is not a number, an
  unknown element.

:func:`complete_text` gives the text of the complete frames only, so that readers of
trajectories can skip a truncated tail (with a warning) instead of refusing the file.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from fieldforce.errors import DataError

#: extxyz property types and what a column of that type must hold
_TYPES = {"S": "a string", "R": "a number", "I": "an integer", "L": "T or F"}
_PROPERTIES = re.compile(r"""(?:^|\s)Properties\s*=\s*("[^"]*"|'[^']*'|\S+)""", re.I)


@dataclass(frozen=True)
class Problem:
    """The first thing wrong in a file: frame index, 1-based line number, message, and
    whether it is a truncated tail (a file that ends in the middle of its last frame)."""

    frame: int
    line: int
    message: str
    truncated: bool = False
    #: only that the file's last line has no line end (it may, or may not, be cut)
    no_line_end: bool = False

    def error(self, path: str | Path) -> DataError:
        return DataError(f"line {self.line}: {self.message}", path=str(path), frame=self.frame)


@dataclass(frozen=True)
class Scan:
    """Complete frames (their count and where the last one ends) and the first problem."""

    n_frames: int
    end_offset: int  # characters of text covering the complete frames
    problem: Problem | None


def read_text(path: str | Path) -> str:
    """The file's text (``.gz`` decompressed); DataError if it is not readable text."""
    path = Path(path)
    try:
        raw = gzip.open(path, "rb").read() if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read the file ({exc})", path=str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"line {line}: not text (a byte that is not UTF-8 at offset "
                        f"{exc.start}); is this an extended XYZ file?", path=str(path)) from None


def _columns(comment: str) -> list[tuple[str, str, int]]:
    """(name, type, count) of each property in a comment line's Properties=."""
    match = _PROPERTIES.search(comment)
    spec = match.group(1).strip("\"'") if match else "species:S:1:pos:R:3"
    parts = spec.split(":")
    if len(parts) % 3:
        raise ValueError(f"Properties={spec!r} is not name:type:count triples")
    out = []
    for name, kind, count in zip(parts[0::3], parts[1::3], parts[2::3], strict=True):
        if kind.upper() not in _TYPES or not count.isdigit():
            raise ValueError(f"Properties={spec!r}: {name}:{kind}:{count} is not a column "
                             "spec (types S, R, I, L)")
        out.append((name, kind.upper(), int(count)))
    return out


def _check_value(token: str, kind: str, name: str) -> str | None:
    """Why ``token`` is not a valid value of an extxyz column of type ``kind``, or None."""
    if kind == "R":
        try:
            float(token)
        except ValueError:
            return f"column {name!r}: {token[:30]!r} is not a number"
    elif kind == "I":
        try:
            int(token)
        except ValueError:
            return f"column {name!r}: {token[:30]!r} is not an integer"
    elif kind == "L" and token not in ("T", "F", "True", "False", "TRUE", "FALSE"):
        return f"column {name!r}: {token[:30]!r} is not T or F"
    return None


def scan(text: str, line_end_required: bool = False, check_values: bool = True) -> Scan:
    """Walk ``text`` frame by frame (see the module docstring).

    ``line_end_required``: a last frame whose last line has no line end counts as
    truncated (a writer killed mid-line; files fieldforce writes always end lines).
    ``check_values``: also check every value's type and element (slower; without it only
    the layout of counts, lines and columns is checked, e.g. to find a truncated tail).
    """
    from ase.data import chemical_symbols

    elements = set(chemical_symbols[1:])
    lines = text.splitlines(keepends=True)
    offset, i, frame = 0, 0, 0
    while i < len(lines):
        count_line = lines[i]
        if not count_line.strip():  # blank lines between or after frames are tolerated
            offset += len(count_line)
            i += 1
            continue
        token = count_line.strip()
        if not token.isdigit():
            return Scan(frame, offset, Problem(frame, i + 1, "expected the number of atoms "
                                               f"of frame {frame}, got {token[:40]!r}"))
        n = int(token)
        if i + 1 >= len(lines):
            return Scan(frame, offset, Problem(frame, i + 1, "the file ends after the atom "
                                               "count: the frame is truncated", True))
        try:
            columns = _columns(lines[i + 1])
        except ValueError as exc:
            return Scan(frame, offset, Problem(frame, i + 2, str(exc)))
        width = sum(c for _, _, c in columns)
        for k in range(n):
            number = i + 2 + k
            if number >= len(lines):
                return Scan(frame, offset, Problem(
                    frame, number, f"the file ends after {k} of the {n} atom lines: the "
                    "frame is truncated", True))
            line = lines[number]
            last = number == len(lines) - 1
            fields = line.split()
            if len(fields) != width:
                cut = last and not line.endswith("\n") and len(fields) < width
                return Scan(frame, offset, Problem(
                    frame, number + 1, f"atom {k}: expected {width} columns "
                    f"({', '.join(f'{a}:{b}:{c}' for a, b, c in columns)}), got "
                    f"{len(fields)}" + ("; the frame is truncated" if cut else ""), cut))
            position = 0
            for name, kind, count in columns if check_values or last else ():
                for token in fields[position:position + count]:
                    reason = _check_value(token, kind, name)
                    if reason is None and name.lower() == "species" and token not in elements:
                        reason = f"unknown element {token[:10]!r}"
                    if reason is not None:
                        cut = last and not line.endswith("\n")
                        return Scan(frame, offset, Problem(
                            frame, number + 1, f"atom {k}: {reason}"
                            + ("; the frame is truncated" if cut else ""), cut))
                position += count
        end = offset + sum(len(line) for line in lines[i:i + 2 + n])
        if line_end_required and not lines[i + 1 + n].endswith("\n"):
            # the last line may be cut inside its last number
            return Scan(frame, offset, Problem(frame, i + 2 + n, "the last line has no "
                                               "line end: the frame may be truncated (its "
                                               "last number cut short)", True, True))
        offset = end
        i += 2 + n
        frame += 1
    return Scan(frame, offset, None)


def explain(path: str | Path, ase_error: Exception) -> DataError:
    """One sentence for a file ASE could not read: the first problem :func:`scan` finds
    (frame and line), else ASE's own message."""
    text = read_text(path)
    problem = scan(text).problem
    if problem is not None:
        return problem.error(path)
    return DataError(f"cannot parse as extended XYZ ({type(ase_error).__name__}: "
                     f"{str(ase_error)[:200]})", path=str(path))


def complete_text(path: str | Path) -> tuple[str, Problem | None]:
    """The text of the file's complete frames, and the truncated tail left out (None if
    there is none). Any other problem is a DataError naming its frame and line."""
    text = read_text(path)
    result = scan(text, line_end_required=True, check_values=False)
    if result.problem is not None and not result.problem.truncated:
        raise result.problem.error(path)
    return text[:result.end_offset], result.problem


__all__ = ["Problem", "Scan", "complete_text", "explain", "read_text", "scan"]
