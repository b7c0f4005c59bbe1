"""Checks every frame passes on its way in: shapes, finite values, symmetry, distances.

Each check raises one :class:`~fieldforce.errors.DataError` naming the file, the
frame index, the key (as spelled in the file) and what was expected.
"""

from __future__ import annotations

import numpy as np

from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS, SYMMETRIC_LABELS
from fieldforce.errors import DataError

#: Atoms closer than this (Å) are taken as a broken structure.
MIN_DISTANCE = 0.5
#: Allowed asymmetry of symmetric tensors, relative to their norm.
SYMMETRY_TOLERANCE = 1e-3


def canonical_shape(name: str, n_atoms: int) -> tuple[int, ...]:
    spec = LABELS[name]
    return (n_atoms, *spec.shape) if spec.per_atom else spec.shape


def coerce_label(
    name: str, value, n_atoms: int, *, path: str | None, frame: int | None, key: str
) -> np.ndarray:
    """Turn a raw value from a file into the canonical shape, or raise DataError.

    Accepted layouts: 9 numbers row-major or 3x3 for structure tensors; 6 Voigt
    numbers (xx yy zz yz xz xy) or 9 for stress; N x 9 or N x 3 x 3 for per-atom
    tensors.
    """
    spec = LABELS[name]
    if isinstance(value, str):  # e.g. '0.3, 0.3, 0.3' that the extxyz parser left as text
        value = value.replace(",", " ").split()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"expected numbers for {name}, got {value!r}",
                        path=path, frame=frame, key=key) from None
    target = canonical_shape(name, n_atoms)
    if name == "stress" and arr.size == 6:
        xx, yy, zz, yz, xz, xy = arr.ravel()
        arr = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if arr.size != int(np.prod(target)):
        per = f"{spec.size} per atom x {n_atoms} atoms" if spec.per_atom else f"{spec.size}"
        raise DataError(
            f"expected {per} numbers for {name} (shape {target}), got {arr.size} "
            f"(shape {arr.shape})",
            path=path, frame=frame, key=key,
        )
    if spec.per_atom and arr.ndim >= 1 and arr.shape[0] != n_atoms:
        raise DataError(f"expected one {name} entry per atom ({n_atoms}), got shape {arr.shape}",
                        path=path, frame=frame, key=key)
    arr = arr.reshape(target)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        at = f" at index {bad}" if bad else ""  # a scalar has no index
        raise DataError(f"non-finite value (NaN or inf) in {name}{at}",
                        path=path, frame=frame, key=key)
    return arr


def check_symmetric(name: str, arr: np.ndarray, *, path, frame, key) -> None:
    norm = np.linalg.norm(arr)
    asym = np.linalg.norm(arr - arr.T)
    if norm > 0 and asym > SYMMETRY_TOLERANCE * norm:
        raise DataError(
            f"{name} must be symmetric: |A - A^T| / |A| = {asym / norm:.2e} exceeds "
            f"{SYMMETRY_TOLERANCE:g}",
            path=path, frame=frame, key=key,
        )


def check_geometry(frame: Frame, *, min_distance: float = MIN_DISTANCE) -> None:
    """Finite positions, a usable cell where periodic, no atoms closer than ``min_distance``."""
    atoms = frame.atoms
    path, index = frame.source, frame.index
    unknown = np.flatnonzero((atoms.numbers < 1) | (atoms.numbers > 118))
    if len(unknown):
        raise DataError(f"atom {int(unknown[0])} is not a chemical element (symbol "
                        f"{atoms.get_chemical_symbols()[unknown[0]]!r})", path=path,
                        frame=index, key="species")
    if not np.all(np.isfinite(atoms.positions)):
        raise DataError("non-finite atomic position", path=path, frame=index, key="pos")
    if atoms.pbc.any():
        cell = atoms.cell.array
        volume = abs(np.linalg.det(cell))
        if volume < 1e-6:
            raise DataError("periodic structure with a zero-volume cell",
                            path=path, frame=index, key="Lattice")
        # spheres of diameter min_distance cannot fill more than 74 % of space (Kepler):
        # a smaller cell must hold an overlap, and the search below would crawl through
        # the thousands of images a sliver of a cell has within the cutoff
        needed = len(atoms) * np.pi * min_distance**3 / (6 * 0.7405) if atoms.pbc.all() \
            else 0.0
        if volume < needed:
            raise DataError(f"the cell's volume, {volume:.3g} Å³, cannot hold {len(atoms)} "
                            f"atoms {min_distance} Å apart (at least {needed:.3g} Å³)",
                            path=path, frame=index, key="Lattice")
    if len(atoms) < 2:
        return
    # ASE's neighbour list, not fieldforce.neighbors (vesin), which would bring torch into
    # reading a file (start-up time, issue 11)
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, min_distance)
    if len(d):
        k = int(np.argmin(d))
        raise DataError(
            f"atoms {i[k]} and {j[k]} are {d[k]:.3f} Å apart (less than {min_distance} Å)",
            path=path, frame=index, key="pos",
        )


def validate_frame(frame: Frame) -> None:
    """Check a frame already in canonical form (shapes, finiteness, symmetry, geometry)."""
    n = len(frame.atoms)
    for name, value in frame.labels.items():
        arr = coerce_label(name, value, n, path=frame.source, frame=frame.index, key=name)
        if name in SYMMETRIC_LABELS:
            check_symmetric(name, arr, path=frame.source, frame=frame.index, key=name)
    check_geometry(frame)
