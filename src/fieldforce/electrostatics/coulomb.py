"""Coulomb potential, energy and field of point or Gaussian charges.

Conventions (internal units): charges q_i in e, positions in Å, energy in eV,
potentials phi_i in V, fields in V/Å, k_e = :data:`fieldforce.units.COULOMB_CONSTANT`.

    phi_i = k_e sum_{j != i} q_j erf(r_ij / (sqrt(2) g_ij)) / r_ij   (all periodic images)
    U     = 1/2 sum_i q_i phi_i,        g_ij² = w_i² + w_j²

with w_i the standard deviation of atom i's Gaussian charge (0 for point
charges, erf -> 1). The Gaussians' self-energies k_e q_i² / (2 sqrt(pi) w_i)
are not included: U -> the point-charge energy as the widths -> 0. (The LES
papers' single smearing sigma of the pair kernel corresponds to w = sigma / sqrt(2).)

Geometries:
* isolated (no periodic direction): direct O(N²) sum;
* 3D periodic, orthorhombic or triclinic: Ewald, PME or P3M from torch-pme; a
  charged cell gets the uniform neutralising background;
* slabs (two periodic directions): the 3D sum plus the Yeh-Berkowitz correction
  with Ballenegger's terms for a net charge, as implemented by torch-pme. Its
  assumptions are checked on input (:func:`check_slab`): the non-periodic
  lattice vector is along its Cartesian axis and perpendicular to the other two,
  no atom is wrapped across the vacuum, and the cell is at least three times
  as tall as the slab is thick, the usual recommendation of Yeh and Berkowitz.

torch-pme's per-atom "potential" already carries the 1/2 (U = sum_i q_i V_i), so
phi_i = 2 V_i. Everything is differentiable: forces, stress and (through
:func:`coulomb_field`) the field at the atoms come from autograd.

:func:`coulomb_potential` builds a :class:`~fieldforce.electrostatics.operator.CoulombOperator`
(everything that depends on the geometry alone) and applies it once; solvers that
need the potential of many charge vectors at one geometry keep the operator.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from fieldforce import units
from fieldforce.electrostatics.parameters import SplittingParameters, is_orthorhombic
from fieldforce.errors import ConfigError, DataError
from fieldforce.neighbors import neighbor_pairs, pair_vectors

METHODS = ("direct", "ewald", "pme", "p3m")
#: atoms closer than this (Å) are refused as overlapping.
MIN_DISTANCE = 0.1
#: a Gaussian pair kernel differs from 1/r by less than erfc(6) ~ 2e-17 beyond
#: 6 sqrt(2) g_ij, where the width correction is cut off.
_WIDTH_RANGE = 6.0 * np.sqrt(2.0)


def _pbc_tensor(pbc) -> torch.Tensor:
    return torch.as_tensor(np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy())


def _check_charges(charges: torch.Tensor, n_atoms: int) -> None:
    if charges.shape[0] != n_atoms or charges.ndim not in (1, 2):
        raise DataError(f"charges must have shape [{n_atoms}] (or "
                        f"[{n_atoms}, channels]), got {tuple(charges.shape)}")
    if not torch.isfinite(charges).all():
        raise DataError("charges contain NaN or inf")


def _check_geometry(positions, cell, pbc, widths) -> None:
    """Positions, widths, cell volume and overlaps: all input checks but the charges'."""
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise DataError(f"positions must have shape [N, 3], got {tuple(positions.shape)}")
    if not torch.isfinite(positions).all():
        raise DataError("positions contain NaN or inf")
    if widths is not None:
        if widths.shape != positions.shape[:1]:
            raise DataError(f"widths must have shape [{positions.shape[0]}], "
                            f"got {tuple(widths.shape)}")
        if not torch.isfinite(widths).all() or (widths < 0).any():
            raise DataError("Gaussian widths must be finite and >= 0 Å")
    if pbc.any() and abs(float(torch.det(cell.detach()))) < 1e-8:
        raise DataError("periodic cell has zero volume")
    pos = positions.detach().cpu().numpy()
    i, j, _ = neighbor_pairs(pos, cell.detach().cpu().numpy(), pbc.numpy(), MIN_DISTANCE)
    if len(i):
        raise DataError(f"atoms {i[0]} and {j[0]} overlap (closer than {MIN_DISTANCE} Å); "
                        "a Coulomb energy needs distinct positions")


def check_slab(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> int:
    """Check the assumptions of the slab correction; returns the non-periodic axis."""
    axis = int(torch.nonzero(~pbc)[0])
    c = cell[axis].detach().cpu().numpy()
    others = cell[pbc].detach().cpu().numpy()
    length = np.linalg.norm(c)
    if length < 1e-8:
        raise DataError(f"slab cell vector {axis} (the non-periodic one) is zero; give the "
                        "cell height across the vacuum")
    if np.abs(np.delete(c, axis)).max() > 1e-8 * length or np.abs(others[:, axis]).max() > 1e-8:
        raise DataError(f"slab cell vector {axis} must lie along Cartesian axis {axis} and be "
                        "perpendicular to the two periodic vectors (Yeh-Berkowitz geometry)")
    z = positions[:, axis].detach().cpu().numpy()
    if z.min() < -1e-8 or z.max() > length + 1e-8:
        raise DataError(f"slab atoms must lie inside the cell along axis {axis} "
                        f"(0..{length:.3f} Å), found {z.min():.3f}..{z.max():.3f} Å; "
                        "do not wrap a slab across the vacuum")
    thickness = float(z.max() - z.min())
    if length < 3.0 * thickness:
        raise DataError(f"slab is {thickness:.2f} Å thick in a {length:.2f} Å cell; the slab "
                        "correction needs a cell at least 3x the slab thickness (more vacuum)")
    return axis


def direct_matrix(positions: torch.Tensor,
                  widths: torch.Tensor | None = None) -> torch.Tensor:
    """Coulomb matrix [N, N] in V/e of an isolated system (phi = A q): k_e erf(r_ij /
    (sqrt(2) g_ij)) / r_ij off the diagonal, 0 on it (no self term)."""
    diff = positions[:, None, :] - positions[None, :, :]
    n = positions.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=positions.device)
    # 1 on the diagonal before the square root keeps its gradient finite.
    r = torch.where(eye, torch.ones_like(diff[..., 0]), (diff**2).sum(-1)).sqrt()
    kernel = 1.0 / r
    if widths is not None:
        g = (widths[:, None] ** 2 + widths[None, :] ** 2).sqrt()
        kernel = torch.where(g > 0, torch.erf(r / (np.sqrt(2) * g.clamp_min(1e-300))), 1.0) / r
    kernel = torch.where(eye, torch.zeros_like(kernel), kernel)
    return units.COULOMB_CONSTANT * kernel


def direct_potential(positions: torch.Tensor, charges: torch.Tensor,
                     widths: torch.Tensor | None = None) -> torch.Tensor:
    """phi_i of an isolated system by the O(N²) direct sum, [N] or [N, C] in V."""
    return direct_matrix(positions, widths) @ charges


def real_space_pairs(positions: torch.Tensor, cell: torch.Tensor,
                     cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs closer than ``cutoff`` Å, all images of the 3D-periodic ``cell``, each pair
    once (vesin): indices [P, 2] and distances [P] Å, differentiable w.r.t. positions and
    cell. The neighbour list torch-pme's real-space sum takes."""
    i_np, j_np, s_np = neighbor_pairs(positions.detach().cpu().numpy(),
                                      cell.detach().cpu().numpy(), True, cutoff)
    i = torch.as_tensor(i_np, device=positions.device)
    j = torch.as_tensor(j_np, device=positions.device)
    d = pair_vectors(positions, cell, i, j, s_np).norm(dim=-1)
    return torch.stack([i, j], dim=1), d


def width_correction_pairs(positions: torch.Tensor, cell: torch.Tensor,
                           widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian minus point-charge pair kernel in a periodic cell: pairs [P, 2] and
    -k_e erfc(r_ij / (sqrt(2) g_ij)) / r_ij [P] in V/e, cut off where below 2e-17 / r_ij.
    Apply with :func:`pair_potential`."""
    reach = float(_WIDTH_RANGE * np.sqrt(2.0) * widths.detach().max())
    pairs, r = real_space_pairs(positions, cell, reach)
    g = (widths[pairs[:, 0]] ** 2 + widths[pairs[:, 1]] ** 2).sqrt()
    screen = torch.where(g > 0, torch.erfc(r / (np.sqrt(2) * g.clamp_min(1e-300))), 0.0) / r
    return pairs, -units.COULOMB_CONSTANT * screen


def pair_potential(pairs: torch.Tensor, kernel: torch.Tensor,
                   charges: torch.Tensor) -> torch.Tensor:
    """phi_i = sum_j kernel_ij q_j over pairs listed once ([P, 2], kernel [P]); charges and
    result [N, C]."""
    i, j = pairs[:, 0], pairs[:, 1]
    out = torch.zeros_like(charges)
    out = out.index_add(0, i, kernel[:, None] * charges[j])
    return out.index_add(0, j, kernel[:, None] * charges[i])


@lru_cache(maxsize=32)
def _calculator(params: SplittingParameters, dtype: torch.dtype, device: str):
    """torch-pme calculator for ``params``, cached: building one (TorchScript) costs more
    than a small system's whole sum."""
    return _build_calculator(params).to(dtype=dtype, device=device)


def _build_calculator(params: SplittingParameters):
    import torchpme

    potential = torchpme.CoulombPotential(smearing=params.smearing,
                                          prefactor=units.COULOMB_CONSTANT)
    if params.method == "ewald":
        return torchpme.EwaldCalculator(potential, lr_wavelength=params.wavelength)
    if params.method == "pme":
        return torchpme.PMECalculator(potential, mesh_spacing=params.mesh_spacing,
                                      interpolation_nodes=params.interpolation_nodes)
    return torchpme.P3MCalculator(potential, mesh_spacing=params.mesh_spacing,
                                  interpolation_nodes=params.interpolation_nodes)


def fourier_potential(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    params: SplittingParameters,
    periodic: torch.Tensor | None = None,
) -> torch.Tensor:
    """phi_i [N, C] in V of charges [N, C] in a periodic cell (torch-pme, 3D or slab)."""
    pairs, d = real_space_pairs(positions, cell, params.cutoff)
    calculator = _calculator(params, positions.dtype, str(positions.device))
    if periodic is not None:
        periodic = periodic.to(positions.device)
    half = calculator(charges, cell, positions, pairs, d, periodic)
    return 2 * half


def _resolve_method(method: str, pbc: torch.Tensor, cell: torch.Tensor, n: int,
                    accuracy: float) -> str:
    if method not in (*METHODS, "auto"):
        raise ConfigError(f"unknown Coulomb method {method!r}; expected one of "
                          f"{', '.join(METHODS)} or auto")
    if not pbc.any():
        if method not in ("direct", "auto"):
            raise ConfigError(f"method {method!r} needs a periodic cell; use 'direct' for "
                              "isolated systems")
        return "direct"
    if int(pbc.sum()) == 1:
        raise ConfigError("one periodic direction (wires) is not supported; use a 3D "
                          "periodic cell, a slab (two periodic directions) or no cell")
    if method == "direct":
        raise ConfigError("a direct sum does not converge for a periodic cell; "
                          "use ewald, pme or p3m")
    orthorhombic = is_orthorhombic(cell.detach().cpu().numpy())
    if method == "p3m" and not orthorhombic:
        raise ConfigError("P3M (torch-pme 0.5) is inaccurate in triclinic cells (forces off "
                          "by ~1e-4 relative); use pme or ewald")
    if method == "auto":
        if n < ewald_limit(accuracy):
            return "ewald"
        return "p3m" if orthorhombic else "pme"
    return method


def ewald_limit(accuracy: float) -> int:
    """Atom count below which ``auto`` takes the Ewald sum over a mesh method.

    Ewald's cost grows as N^(3/2), the meshes' as N log N; where they cross depends on
    the accuracy. Energy + forces of periodic water with Gaussian charges, one thread
    (``benchmarks/coulomb_auto_method.py``, BENCHMARKS.md "Electrostatics scaling"): at
    1e-5 the three are within the machine's noise of one another up to 384 atoms (Ewald
    with half P3M's error) and P3M is 1.5x faster at 576 and 3.5x at 768; at 1e-6 Ewald
    still wins at 576 and the meshes gain only 1.2x at 768; at 5e-7 (NaCl, 1000 atoms)
    Ewald, PME and P3M are within 1.4x of one another.
    """
    return 500 if accuracy >= 1e-5 else 1000


def coulomb_potential(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor | None = None,
    pbc=False,
    method: str = "auto",
    accuracy: float = 1e-6,
    widths: torch.Tensor | None = None,
    cutoff: float | None = None,
) -> torch.Tensor:
    """Electrostatic potential phi_i at every atom from all the other charges, in V.

    Parameters
    ----------
    positions
        [N, 3] Å (requires_grad for forces).
    charges
        [N] e, or [N, C] for C independent charge sets (output [N, C]).
    cell
        [3, 3] Å, rows are lattice vectors; needed when any ``pbc``.
    pbc
        bool or [3] bools: none (isolated), all (3D periodic) or two (slab).
    method
        ``direct`` (isolated systems), ``ewald``, ``pme``, ``p3m``, or ``auto``
        (direct when isolated, Ewald below :func:`ewald_limit` atoms: 500 at accuracy
        1e-5 and looser, 1000 when tighter; P3M above for orthorhombic cells and PME
        for triclinic ones).
    accuracy
        target relative accuracy of energies, and RMS force error relative to the
        Coulomb force scale k_e <q²> rho^(2/3) (the relative force error in
        disordered systems); splitting, cutoff and mesh follow from it
        (:mod:`fieldforce.electrostatics.parameters`).
    widths
        [N] Å, standard deviations of Gaussian charges (None: point charges).
    cutoff
        real-space cutoff, Å (default: balanced against the mesh for this density).

    This builds a :class:`~fieldforce.electrostatics.operator.CoulombOperator` for the
    geometry and applies it once; build the operator yourself to apply it to many
    charge vectors (charge equilibration).
    """
    # the operator imports this module's helpers, hence the import here
    from fieldforce.electrostatics.operator import CoulombOperator

    return CoulombOperator(positions, cell, pbc, method, accuracy, widths, cutoff)(charges)


def coulomb_field(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor | None = None,
    pbc=False,
    method: str = "auto",
    accuracy: float = 1e-6,
    widths: torch.Tensor | None = None,
    create_graph: bool = False,
) -> torch.Tensor:
    """Electric field E_i = -grad phi at every atom from all the other charges, [N, 3] V/Å.

    phi is bilinear in charges with a symmetric kernel, B(a, b) = sum_ij a_i b_j K_ij,
    so the gradient of B(1, q) is -E[q] - q * E[1] and that of B(1, 1) is -2 E[1]:
    two autograd passes give E[q] even at atoms whose own charge is zero.
    ``create_graph`` keeps the result differentiable (for models using the field).
    Arguments as in :func:`coulomb_potential`.
    """
    pos = positions if positions.requires_grad else positions.detach().requires_grad_(True)
    ones = torch.ones_like(charges)
    phi = coulomb_potential(pos, torch.stack([charges, ones], dim=1), cell, pbc, method,
                            accuracy, widths)
    g_q = torch.autograd.grad(phi[:, 0].sum(), pos, retain_graph=True,
                              create_graph=create_graph)[0]
    g_1 = torch.autograd.grad(phi[:, 1].sum(), pos, create_graph=create_graph)[0]
    return -g_q + 0.5 * charges[:, None] * g_1


def resolve_widths(widths, numbers) -> np.ndarray | None:
    """Per-atom widths [N] Å from None, a scalar, a per-atom sequence or {element: width}."""
    if widths is None:
        return None
    numbers = np.asarray(numbers)
    if isinstance(widths, dict):
        from ase.data import atomic_numbers

        table = {atomic_numbers[k] if isinstance(k, str) else int(k): float(v)
                 for k, v in widths.items()}
        missing = sorted(set(numbers.tolist()) - set(table))
        if missing:
            raise DataError(f"no Gaussian width given for atomic numbers {missing}")
        return np.array([table[z] for z in numbers])
    out = np.broadcast_to(np.asarray(widths, dtype=float), numbers.shape).copy()
    return out


def coulomb_energy(atoms, charges, method: str = "auto", accuracy: float = 1e-6,
                   widths=None) -> float:
    """Coulomb energy (eV) of the charges (e) on an ASE ``Atoms``; a convenience for users.

    ``widths``: None (point charges), one width in Å, one per atom, or a dict
    {element symbol or Z: width}. Geometry (isolated, slab, 3D) follows ``atoms.pbc``.
    """
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    q = torch.as_tensor(np.asarray(charges, dtype=float), dtype=torch.float64)
    cell = torch.as_tensor(atoms.cell.array, dtype=torch.float64)
    w = resolve_widths(widths, atoms.numbers)
    w_t = None if w is None else torch.as_tensor(w, dtype=torch.float64)
    phi = coulomb_potential(positions, q, cell, atoms.pbc, method, accuracy, w_t)
    return float(0.5 * (q * phi).sum())
