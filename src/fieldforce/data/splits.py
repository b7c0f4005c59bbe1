"""Reproducible train/validation/test splits, and frames chosen by their info tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from fieldforce.data.frame import Frame
from fieldforce.errors import ConfigError


def random_split(
    frames: Sequence[Frame], sizes: Sequence[float | int], seed: int = 0
) -> list[list[Frame]]:
    """Split ``frames`` at random into parts of the given sizes.

    Parameters
    ----------
    sizes
        fractions summing to at most 1 (the last part takes the rounding rest
        when they sum to 1), or integer counts summing to at most ``len(frames)``.
    seed
        the same seed gives the same split on every platform (numpy PCG64).
    """
    n = len(frames)
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        counts = [int(s) for s in sizes]
    else:
        fractions = [float(s) for s in sizes]
        if any(f < 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
            raise ConfigError(f"split fractions must be >= 0 and sum to <= 1, got {fractions}")
        counts = [int(round(f * n)) for f in fractions]
        if abs(sum(fractions) - 1) < 1e-9:
            counts[-1] = n - sum(counts[:-1])
    if any(c < 0 for c in counts) or sum(counts) > n:
        raise ConfigError(f"cannot take {counts} frames from a set of {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    for c in counts:
        parts.append([frames[i] for i in sorted(order[start : start + c])])
        start += c
    return parts


def split_by_tag(
    frames: Sequence[Frame], key: str, values: Iterable[str], option: str = "--test-values"
) -> tuple[list[Frame], list[Frame]]:
    """Frames whose ``atoms.info[key]`` is one of ``values``, and the rest.

    Every frame must carry the tag, and every value must occur (:func:`select_frames`'s
    errors, ``option`` naming where the values came from): a misspelt value would
    otherwise hold out nothing. Values given as text (a command line) match tags of any
    type by their text."""
    frames = list(frames)
    source = frames[0].source if frames else "frames"
    missing = [f.index for f in frames if key not in f.atoms.info]
    if missing:
        raise ConfigError(f"{source}: frame {missing[0]} has no tag {key!r} to split by")
    chosen = select_frames(frames, {key: list(values)}, source, option)
    taken = {id(f) for f in chosen}
    return chosen, [f for f in frames if id(f) not in taken]


def _info_value(frame: Frame, key: str):
    """``frame.atoms.info[key]`` as a plain scalar, or None for an array or no entry."""
    v = frame.atoms.info.get(key)
    v = v.item() if getattr(v, "size", 0) == 1 else v  # numpy scalars from extxyz
    return v if isinstance(v, (str, int, float)) else None  # arrays never match


def _matches(value, wanted) -> bool:
    """A tag value against a wanted one: equal, or equal as text (``"7"`` from a command
    line against an integer tag 7)."""
    return value is not None and (value == wanted or str(value) == str(wanted))


def select_frames(frames: list[Frame], select: dict | None, source: str,
                  option: str = "data.select") -> list[Frame]:
    """The frames of ``source`` whose info entries take the values ``select`` gives
    (key -> value or list of values; None keeps every frame). ``option`` names where the
    selection came from in errors (a config key such as ``data.select``, or a function).
    A key no frame has, or a value no frame takes, is one error naming what the frames do
    have: a misspelt selection would otherwise give fewer frames without a word."""
    if not select:
        return frames
    for key, wanted in select.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        present = {_info_value(f, key) for f in frames} - {None}
        if not present:
            keys = sorted({k for f in frames for k in f.atoms.info})
            raise ConfigError(f"{source}: {option} names info key {key!r}, which no frame "
                              f"has; the frames' info keys: {', '.join(keys)}")
        for w in wanted:
            if not any(_matches(v, w) for v in present):
                raise ConfigError(f"{source}: {option}.{key}: no frame has {key} = "
                                  f"{w!r}; present: "
                                  f"{', '.join(sorted(map(str, present)))}")
        frames = [f for f in frames
                  if any(_matches(_info_value(f, key), w) for w in wanted)]
    return frames
