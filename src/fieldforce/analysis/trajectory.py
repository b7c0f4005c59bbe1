"""Time series from an MD trajectory (extxyz, as ``fieldforce md`` writes it).

Each function returns arrays in internal units with one row per frame, or raises a
:class:`~fieldforce.errors.DataError` naming the file, the frame and the key that is
missing or malformed. Values are found wherever the frame keeps them
(:func:`fieldforce.data.trajectory.frame_value`: the frame schema).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fieldforce.data.trajectory import HINTS, frame_value
from fieldforce.errors import DataError


def read_trajectory(path: str | os.PathLike[str]) -> list:
    """All complete frames of the extxyz file ``path`` (ASE ``Atoms``).

    A truncated last frame (a run killed while writing it) is skipped with a warning
    naming its frame and line; any other malformed frame is a DataError naming them.
    """
    import io
    import warnings

    import ase.io

    from fieldforce.data.extxyz import complete_text

    path = Path(path)
    if not path.is_file():
        raise DataError("no such trajectory file", path=str(path))
    text, tail = complete_text(path)
    if tail is not None:
        warnings.warn(f"{path}, frame {tail.frame}: line {tail.line}: {tail.message}; "
                      "reading the complete frames before it", stacklevel=2)
    try:
        frames = ase.io.read(io.StringIO(text), index=":", format="extxyz") if text.strip() \
            else []
    except Exception as exc:  # noqa: BLE001 - ASE raises many types on bad files
        raise DataError(f"cannot read the trajectory ({type(exc).__name__}: {exc})",
                        path=str(path)) from None
    if not frames:
        raise DataError("the trajectory has no frames", path=str(path))
    return frames


def first_frame_at(times: np.ndarray, skip_fs: float, path: str | os.PathLike[str]) -> int:
    """Index of the first frame with ``time_fs >= skip_fs`` (drop a transient)."""
    after = np.flatnonzero(times >= skip_fs)
    if not after.size:
        raise DataError(f"no frame at or after {skip_fs:g} fs (the last is at "
                        f"{times[-1]:g} fs)", path=str(path), key="time_fs")
    return int(after[0])


def frame_series(frames, key: str, path: str | os.PathLike[str], shape: tuple[int, ...],
                 start: int = 0) -> np.ndarray:
    """The value of ``key`` in every frame, [T, *shape] float64 (``-1`` in ``shape``:
    the number of atoms). ``start``: index of ``frames[0]`` in the file (for messages)."""
    rows = []
    for k, atoms in enumerate(frames):
        value = frame_value(atoms, key)
        where = {"path": str(path), "frame": start + k, "key": key}
        if value is None:
            hint = HINTS.get(key)
            raise DataError("missing" + (f" ({hint})" if hint else ""), **where)
        want = tuple(len(atoms) if s == -1 else s for s in shape)
        try:
            arr = np.asarray(value, dtype=float).reshape(want)
        except (TypeError, ValueError):
            raise DataError(f"expected {int(np.prod(want))} numbers of shape {list(want)}, "
                            f"got {np.shape(value)}", **where) from None
        if not np.isfinite(arr).all():
            raise DataError("non-finite value (NaN or inf)", **where)
        rows.append(arr)
    return np.stack(rows)


def frame_times(frames, path: str | os.PathLike[str]) -> np.ndarray:
    """``time_fs`` of every frame, [T] fs."""
    return frame_series(frames, "time_fs", path, ())


def uniform_timestep(times: np.ndarray, path: str | os.PathLike[str], start: int = 0) -> float:
    """The constant spacing of ``times`` (fs); a DataError naming the first frame where
    the spacing differs (e.g. a run whose last step was not a multiple of the interval)."""
    if times.size < 2:
        raise DataError(f"need at least two frames for a time series, got {times.size}",
                        path=str(path))
    steps = np.diff(times)
    dt = float(steps[0])
    if not dt > 0:
        raise DataError(f"time_fs does not increase (from {times[0]:g} to {times[1]:g} fs)",
                        path=str(path), frame=start + 1, key="time_fs")
    bad = np.flatnonzero(np.abs(steps - dt) > 1e-6 * dt)
    if bad.size:
        k = int(bad[0])
        raise DataError(f"frames are {dt:g} fs apart, but this one comes {steps[k]:g} fs "
                        "after the previous; spectra need equally spaced frames (use a "
                        "steps count that is a multiple of write_interval)",
                        path=str(path), frame=start + k + 1, key="time_fs")
    return dt


def frame_velocities(frames, path: str | os.PathLike[str], start: int = 0) -> np.ndarray:
    """Velocities [T, N, 3] in Å/fs, from the frames' momenta and masses."""
    from ase import units

    momenta = frame_series(frames, "momenta", path, (-1, 3), start)
    masses = np.stack([f.get_masses() for f in frames])
    return momenta / masses[:, :, None] * units.fs


def frame_born_charges(frames, path: str | os.PathLike[str], start: int = 0) -> np.ndarray:
    """Born charges [T, N, 3, 3] e (stored row-major as [N, 9])."""
    return frame_series(frames, "born_charges", path, (-1, 3, 3), start)
