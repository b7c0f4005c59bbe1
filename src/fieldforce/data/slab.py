"""Slab geometry: the surface normal and the atomic layers of a structure periodic in two
directions (metal surfaces labelled, relaxed and simulated under a normal field)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from fieldforce.errors import DataError


def surface_normal(atoms: Atoms, purpose: str = "this") -> np.ndarray:
    """[3] unit normal of a slab (periodic in exactly two directions), pointing along its
    open cell vector; for anything else one clear error, "``purpose`` needs a slab"."""
    pbc = np.asarray(atoms.pbc, bool)
    if pbc.sum() != 2:
        raise DataError(f"{purpose} needs a slab (periodic in exactly two directions); got "
                        f"pbc={pbc.tolist()}")
    a, b = atoms.cell.array[pbc]
    n = np.cross(a, b)
    n /= np.linalg.norm(n)
    return n if n @ atoms.cell.array[~pbc][0] > 0 else -n


def interior_plane(heights: np.ndarray, layer_tol: float = 0.3) -> float:
    """Height (Å) of the gap between atomic layers nearest the slab's middle, from the
    atoms' ``heights`` [N] along the normal (atoms within ``layer_tol`` Å of the next
    lower one share its layer). A plane through a layer would cut the atoms' cores, where
    a real-space grid resolves the density worst."""
    layers: list[list[float]] = []
    for z in np.sort(heights):
        if layers and z - layers[-1][-1] < layer_tol:
            layers[-1].append(z)
        else:
            layers.append([z])
    middle = 0.5 * (heights.min() + heights.max())
    if len(layers) < 2:
        return middle
    pairs = zip(layers[:-1], layers[1:], strict=True)
    gaps = [0.5 * (lower[-1] + upper[0]) for lower, upper in pairs]
    return min(gaps, key=lambda g: abs(g - middle))


__all__ = ["interior_plane", "surface_normal"]
