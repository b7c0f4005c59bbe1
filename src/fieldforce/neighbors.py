"""Neighbour lists (vesin) with distance vectors that autograd can differentiate.

vesin finds the pairs and their periodic image shifts on plain arrays; the
distance vectors are then rebuilt in torch from the positions and the cell,
r_ij = r_j - r_i + S_ij · cell, so forces and stress flow through them.

vesin bins space by the cutoff: a search for overlapping atoms (cutoff 0.1 Å) in a 9 Å
water box makes ~10^6 bins and takes 15 ms, a 1 Å search 0.1 ms. Short searches are
therefore run at :data:`MIN_SEARCH` and filtered.

vesin 0.6 dies of SIGFPE (the process, not an exception) when a non-periodic direction
spans more than a few 10^4 search radii: a cluster with one atom 5·10^4 Å away at a 1 Å
cutoff, or a slab with an atom evaporated 10^6 Å into the vacuum at 1 Å. Such spans go
to ASE's neighbour list instead (:data:`MAX_SPAN`); nothing physical is lost, they are
rare, and a dead MD run loses its last checkpoint interval.
"""

from __future__ import annotations

import numpy as np
import torch

#: shortest cutoff (Å) handed to vesin; shorter searches are filtered from its pairs
MIN_SEARCH = 1.0

#: longest non-periodic span, in search radii, handed to vesin (it crashed from 4·10^4)
MAX_SPAN = 1.0e4


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float, full: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs closer than ``cutoff`` Å.

    Parameters
    ----------
    positions
        [N, 3] Å.
    cell
        [3, 3] Å, rows are lattice vectors (ignored where ``pbc`` is False).
    pbc
        bool or [3] bools.
    full
        both (i, j) and (j, i) if True; each pair once otherwise.

    Returns
    -------
    i, j
        [P] int64 atom indices.
    shifts
        [P, 3] int64 image shifts S (in units of lattice vectors).
    """
    from vesin import NeighborList

    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.asarray(cell, dtype=float) if pbc.any() else np.zeros((3, 3))
    search = max(float(cutoff), MIN_SEARCH)
    points = np.asarray(positions, dtype=float)
    if len(points) and np.any(np.ptp(points[:, ~pbc], axis=0) > MAX_SPAN * search):
        return _ase_pairs(points, np.asarray(cell, dtype=float), pbc, float(cutoff), full)
    nl = NeighborList(cutoff=search, full_list=full)
    if search == cutoff:
        i, j, shifts = nl.compute(points=points, box=box, periodic=pbc.tolist(),
                                  quantities="ijS")
    else:
        i, j, shifts, d = nl.compute(points=points, box=box, periodic=pbc.tolist(),
                                     quantities="ijSd")
        keep = d < cutoff
        i, j, shifts = i[keep], j[keep], shifts[keep]
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)


def _ase_pairs(points: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float,
               full: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`neighbor_pairs` by ASE, for spans vesin cannot bin (same conventions)."""
    from ase.neighborlist import primitive_neighbor_list

    i, j, shifts = primitive_neighbor_list("ijS", pbc, cell, points, cutoff,
                                           self_interaction=False)
    if not full:
        # each pair once: (i, j, S) and (j, i, -S) are the same pair; keep i < j, and
        # for an atom and its own image the S whose first non-zero component is positive
        first = np.take_along_axis(shifts, np.argmax(shifts != 0, axis=1)[:, None], 1)[:, 0]
        keep = (i < j) | ((i == j) & (first > 0))
        i, j, shifts = i[keep], j[keep], shifts[keep]
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)


def pair_vectors(
    positions: torch.Tensor, cell: torch.Tensor, i, j, shifts
) -> torch.Tensor:
    """Differentiable distance vectors r_j - r_i + S·cell, shape [P, 3] (Å)."""
    i = torch.as_tensor(i, device=positions.device)
    j = torch.as_tensor(j, device=positions.device)
    shifts = torch.as_tensor(shifts, dtype=positions.dtype, device=positions.device)
    return positions[j] - positions[i] + shifts @ cell
