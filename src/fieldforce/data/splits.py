"""Reproducible train/validation/test splits."""

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
    frames: Sequence[Frame], key: str, values: Iterable[str]
) -> tuple[list[Frame], list[Frame]]:
    """Frames whose ``atoms.info[key]`` is in ``values``, and the rest."""
    wanted = {str(v) for v in values}
    missing = [f.index for f in frames if key not in f.atoms.info]
    if missing:
        where = frames[0].source if frames else ""
        raise ConfigError(f"{where}: frame {missing[0]} has no tag {key!r} to split by")
    chosen = [f for f in frames if str(f.atoms.info[key]) in wanted]
    rest = [f for f in frames if str(f.atoms.info[key]) not in wanted]
    return chosen, rest
