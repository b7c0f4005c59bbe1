"""Ewald splitting, real-space cutoff and Fourier resolution from a requested accuracy.

What ``accuracy`` means. It bounds the RMS force error relative to the Coulomb
force scale of the system, F_s = k_e <q²> rho^(2/3) (two RMS charges at the mean
interparticle spacing). In disordered systems (liquids, random cells) the RMS
force is of order F_s, so ``accuracy`` is the relative force error; in nearly
perfect crystals the forces almost cancel (NaCl with 0.1 Å displacements: RMS
force ~ F_s / 12), and the error relative to those small forces is larger by
F_s / F_rms. The energy error relative to the total Coulomb energy is below
``accuracy`` in both cases. Tests: random cells (relative to RMS forces) and a
displaced NaCl crystal (relative to F_s).

With L = ln(1/accuracy), the Gaussian splitting width sigma = r_c / sqrt(2L) makes
the real-space terms erfc(r_c / (sqrt(2) sigma)) ~ accuracy at the cutoff, and
keeping Fourier components up to k_max = sqrt(2L) / sigma makes the reciprocal
terms exp(-sigma² k_max² / 2) ~ accuracy. torch-pme's ``lr_wavelength`` is a
Nyquist spacing (k_max = pi / lambda), and its ``mesh_spacing`` h gives
2^ceil(log2(2 |a| / h + 1)) mesh points along a lattice vector a, i.e. an actual
spacing <= h / 2.

Mesh resolution. The interpolation error of the mesh methods falls as a power of
(actual spacing / sigma). Calibrated on random neutral cells (300 atoms, relative
RMS force error against Ewald at 1e-12; the script in the docstring of
:func:`mesh_resolution`):

* PME, 6-point Lagrange interpolation:   err ~ 1.5e-5 (x / 0.21)^4.8
* P3M, 5-point, orthorhombic cells:      err ~ 2.5e-6 (x / 0.21)^3.8

with x = spacing / sigma. The spacing is chosen so that this is below the
requested accuracy. torch-pme 0.5's P3M levels off near 1e-4 in triclinic
cells, so P3M is refused there (use PME).

Cutoff. A longer cutoff widens sigma and coarsens the mesh (cost ~ M log M for
M mesh points) but adds real-space pairs (cost ~ N rho r_c³).
:func:`balanced_mesh` tries every power-of-two mesh, takes the smallest sigma
it resolves, and keeps the cheapest by a cost model measured on 2 CPU cores
(``PAIR_COST``); this keeps PME/P3M near N log N. For the Ewald sum, whose
k-space cost grows as N x k-vectors, :func:`balanced_cutoff` balances pairs
against k-vectors, giving the classic N^(3/2) scaling.

torch-pme's own tuners were tried first: their choices gave energies whose error
did not decrease with the requested accuracy (e.g. 6e-5 relative for cubic
zincblende at accuracy 1e-7), so they are not used.

Parameters depend on the accuracy, the method, the number of atoms and the
cell; :func:`splitting_parameters` caches them per (method, accuracy, atoms,
lattice-vector lengths and volume rounded to 5 %), so MD re-uses them until the
cell changes by more than that (re-tuning then; the accuracy holds for any cell
because the mesh spacing is tied to sigma), and
torch-pme sizes its k-grid from the current cell at every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldforce.errors import ConfigError

#: cost of one real-space pair (neighbour search, kernel, backward) relative to one
#: mesh point x log2(mesh) / 24 (FFTs, backward); measured with torch-pme 0.5 on 2 CPU
#: cores: 2.8e-7 s per pair, 1.2e-7 s per 256³-mesh point.
PAIR_COST = 2.0
#: cached parameters are re-used for cells up to this factor longer (then re-tuned).
CELL_MARGIN = 1.05
MIN_CUTOFF = 5.0
#: (prefactor, reference x, exponent) of the calibrated mesh error models.
_MESH_ERROR = {"pme": (1.5e-5, 0.21, 4.8), "p3m": (2.5e-6, 0.21, 3.8)}
_NODES = {"pme": 6, "p3m": 5}


@dataclass(frozen=True)
class SplittingParameters:
    """Everything torch-pme needs for one accuracy.

    Attributes (Å): ``cutoff`` real-space cutoff, ``smearing`` Gaussian splitting
    width sigma, ``wavelength`` Ewald Nyquist wavelength, ``mesh_spacing``
    torch-pme mesh spacing (None for Ewald), ``interpolation_nodes``.
    """

    method: str
    accuracy: float
    cutoff: float
    smearing: float
    wavelength: float
    mesh_spacing: float | None
    interpolation_nodes: int | None

    @classmethod
    def for_accuracy(cls, accuracy: float, cutoff: float, method: str = "ewald"):
        if not 0 < accuracy < 1:
            raise ConfigError(f"accuracy must be between 0 and 1, got {accuracy}")
        if method not in ("ewald", "pme", "p3m"):
            raise ConfigError(f"no splitting parameters for method {method!r}")
        log_inv = np.log(1.0 / accuracy)
        smearing = cutoff / np.sqrt(2 * log_inv)
        wavelength = np.pi * smearing / np.sqrt(2 * log_inv)
        spacing = None
        if method != "ewald":
            spacing = 2 * mesh_resolution(method, accuracy) * smearing
        return cls(method, accuracy, cutoff, float(smearing), float(wavelength), spacing,
                   _NODES.get(method))


def mesh_resolution(method: str, accuracy: float) -> float:
    """Largest mesh spacing / sigma whose calibrated interpolation error is <= accuracy / 2."""
    prefactor, x0, power = _MESH_ERROR[method]
    return float(x0 * (0.5 * accuracy / prefactor) ** (1.0 / power))


def balanced_cutoff(n_atoms: int, volume: float, accuracy: float) -> float:
    """Ewald real-space cutoff (Å) balancing pairs against k-vectors (module docstring)."""
    density = n_atoms / volume
    # rho (2 pi / 3) r_c³ pairs per atom against V k_max³ / (6 pi²) half-space k-vectors,
    # k_max = 2 ln(1/accuracy) / r_c: equal when r_c⁶ = V L³ / (pi³ rho)
    log_inv = np.log(1.0 / accuracy)
    cutoff = (volume * log_inv**3 / (np.pi**3 * density)) ** (1 / 6)
    return float(round(max(MIN_CUTOFF, cutoff), 2))


def balanced_mesh(method: str, accuracy: float, n_atoms: int, lengths: np.ndarray,
                  volume: float) -> SplittingParameters:
    """Mesh-method parameters of least estimated cost (module docstring).

    torch-pme rounds the mesh up to powers of two, so the candidates are the
    meshes 2^k along the longest lattice vector: each fixes the smallest sigma
    the calibrated resolution allows, hence the cutoff and the pair count.
    """
    x = mesh_resolution(method, accuracy)
    root = np.sqrt(2 * np.log(1.0 / accuracy))
    density = n_atoms / volume
    best = None
    for k in range(3, 11):
        n = 2**k
        # CELL_MARGIN: the same parameters must still fit a cell a few % larger (cache)
        smearing = CELL_MARGIN * lengths.max() / ((n - 1) * x)
        cutoff = max(MIN_CUTOFF, smearing * root)
        smearing = cutoff / root
        spacing = 2 * x * smearing * (1 + 1e-9)
        mesh = np.prod(2.0 ** np.ceil(np.log2(2 * CELL_MARGIN * lengths / spacing + 1)))
        pairs = n_atoms * density * (2 * np.pi / 3) * cutoff**3
        cost = mesh * np.log2(mesh) / 24 + PAIR_COST * pairs
        if best is None or cost < best[0]:
            best = (cost, cutoff)
    return SplittingParameters.for_accuracy(accuracy, best[1], method)


_CACHE: dict[tuple, SplittingParameters] = {}


def splitting_parameters(method: str, accuracy: float, n_atoms: int,
                         cell: np.ndarray) -> SplittingParameters:
    """Parameters for ``n_atoms`` in ``cell`` ([3, 3] Å, rows are lattice vectors), cached.

    The cache key holds the lattice-vector lengths in bins of ``CELL_MARGIN``; the
    first cell seen in a bin sets the parameters, which stay accurate (the mesh
    spacing follows sigma) and near the cheapest for every cell of the bin.
    """
    cell = np.asarray(cell, dtype=float)
    lengths = np.linalg.norm(cell, axis=1)
    volume = abs(np.linalg.det(cell))
    bins = tuple(int(v) for v in np.floor(np.log(lengths) / np.log(CELL_MARGIN)))
    key = (method, float(accuracy), int(n_atoms), bins)
    if key not in _CACHE:
        if method == "ewald":
            cutoff = balanced_cutoff(n_atoms, volume, accuracy)
            _CACHE[key] = SplittingParameters.for_accuracy(accuracy, cutoff, method)
        else:
            # size the mesh for the longest cell of the bin
            top = CELL_MARGIN ** (np.array(bins) + 1)
            _CACHE[key] = balanced_mesh(method, accuracy, n_atoms, top / CELL_MARGIN, volume)
    return _CACHE[key]


def is_orthorhombic(cell: np.ndarray, tol: float = 1e-8) -> bool:
    """True when the lattice vectors are mutually perpendicular."""
    cell = np.asarray(cell, dtype=float)
    gram = cell @ cell.T
    off = gram - np.diag(np.diag(gram))
    return bool(np.abs(off).max() <= tol * np.abs(np.diag(gram)).max())
