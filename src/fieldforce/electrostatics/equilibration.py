"""Charge equilibration: the charges that minimise an electronegativity + hardness +
Coulomb energy under fixed group charges (QEq, as in 4G-HDNNPs).

For one structure of N atoms with electronegativities chi_i (V = eV/e; an external
potential phi_ext(r_i) simply adds to them), hardnesses J_i (V/e) and Gaussian charge
widths w_i (Å, standard deviations)::

    E_Q[q] = sum_i chi_i q_i + 1/2 sum_i (J_i + k_e / (sqrt(pi) w_i)) q_i²  + U_C[q]
           = chi.q + 1/2 q.H q,        H = A + diag(J_i + k_e / (sqrt(pi) w_i))

A: the Coulomb matrix of the Gaussian charges (:class:`CoulombOperator`: direct sum for
isolated structures, Ewald/PME with the neutralising background for charged periodic
cells, the Yeh-Berkowitz slab correction for slabs; no self terms). The Gaussians' self
energies k_e q²/(2 sqrt(pi) w) are put back on the diagonal, so that E_Q is the whole
electrostatic energy of the Gaussian charge densities plus each atom's hardness: the
Coulomb part is then positive semi-definite, and H positive definite for J_i > 0.

Constraints: the atoms are split into groups g (``groups`` [N], 0..G-1) whose charges
are fixed, sum_{i in g} q_i = Q_g. One group per structure is a **conductor** (charge
flows anywhere: a metal, or a molecule whose far end feels a protonation); one per
molecule is an **insulator** (no charge crosses between molecules however far apart,
which a single group would allow: QEq's known excess of long-range charge transfer).
The minimum solves the bordered (KKT) system::

    [ H   C ] [ q ]   [ -chi ]            C_ig = 1 if atom i is in group g
    [ C^T 0 ] [ l ] = [   Q  ]            -l_g: the chemical potential of group g (V)

densely (LU; ``torch.linalg.solve``), O(N³) time and O(N²) memory: meant for molecules,
clusters and cells of up to a few thousand atoms. Every output is differentiable by
autograd (with respect to chi, J, w, positions and cell, through A's graph); torch
differentiates the solve with the same LU factors, one more pair of triangular solves
per backward pass. Energies and forces alone would not need it (E_Q is stationary in q
at the solution, so dE_Q/dr = dE_Q/dr at fixed q), but Born charges, polarizabilities
and training on forces (whose parameter gradient passes through q) do.

Linear response at fixed geometry: extra right-hand sides ``responses`` [N, K] (-dphi_ext
/ d(something), e.g. the positions for a uniform field: phi_ext = -E.r, so -dphi/dE_b
= r_b) give dq/d(something) = S responses, S the constrained inverse of H (the top-left
block of the bordered matrix's inverse; positive semi-definite). The dipole
polarizability of an isolated structure is then alpha = X^T S X with X the positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fieldforce import units
from fieldforce.electrostatics.operator import CoulombOperator
from fieldforce.errors import DataError


@dataclass
class Equilibrium:
    """The solution of one charge equilibration.

    Attributes
    ----------
    charges
        [N] e.
    energy
        E_Q at the solution, eV (scalar).
    chemical_potential
        [G] V, per group: dE_Q/dQ_g (the same for every atom of the group).
    response
        [N, K] e per unit of the ``responses`` columns (dq/d...), or None.
    """

    charges: torch.Tensor
    energy: torch.Tensor
    chemical_potential: torch.Tensor
    response: torch.Tensor | None = None


def self_hardness(widths: torch.Tensor) -> torch.Tensor:
    """k_e / (sqrt(pi) w_i) [N] V/e: the Gaussian's self-energy per q² (times 2)."""
    return units.COULOMB_CONSTANT / (math.sqrt(math.pi) * widths)


def equilibrate(operator: CoulombOperator, chi: torch.Tensor, hardness: torch.Tensor,
                widths: torch.Tensor, groups: torch.Tensor, group_charges: torch.Tensor,
                responses: torch.Tensor | None = None) -> Equilibrium:
    """Minimise E_Q (module docstring) for one structure.

    Parameters
    ----------
    operator
        the structure's Coulomb operator, built with the same ``widths``.
    chi
        [N] V, electronegativities including any external potential.
    hardness
        [N] V/e, J_i (> 0).
    widths
        [N] Å, the Gaussian charges' standard deviations (> 0).
    groups
        [N] int64 in 0..G-1: which group each atom's charge belongs to.
    group_charges
        [G] e, each group's net charge.
    responses
        optional [N, K] extra right-hand sides (see the module docstring).
    """
    n = operator.n_atoms
    if chi.shape != (n,) or hardness.shape != (n,) or widths.shape != (n,):
        raise DataError(f"chi, hardness and widths must have shape [{n}]")
    n_groups = group_charges.shape[0]
    if groups.shape != (n,) or int(groups.min()) < 0 or int(groups.max()) >= n_groups:
        raise DataError(f"groups must be [{n}] integers in 0..{n_groups - 1}")
    if (widths <= 0).any():
        raise DataError("charge equilibration needs Gaussian widths > 0 Å")
    coulomb = operator.matrix()
    h = coulomb + torch.diag(hardness + self_hardness(widths))
    c = torch.zeros(n, n_groups, dtype=chi.dtype, device=chi.device)
    c[torch.arange(n), groups] = 1.0
    zeros = torch.zeros(n_groups, n_groups, dtype=chi.dtype, device=chi.device)
    kkt = torch.cat([torch.cat([h, c], 1), torch.cat([c.T, zeros], 1)], 0)
    rhs = torch.cat([-chi, group_charges.to(chi)])[:, None]
    if responses is not None:
        extra = torch.cat([responses, responses.new_zeros(n_groups, responses.shape[1])], 0)
        rhs = torch.cat([rhs, extra], 1)
    solution = torch.linalg.solve(kkt, rhs)
    charges = solution[:n, 0]
    energy = chi @ charges + 0.5 * charges @ (h @ charges)
    return Equilibrium(charges=charges, energy=energy,
                       chemical_potential=-solution[n:, 0],
                       response=None if responses is None else solution[:n, 1:])


def fragments(numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray,
              pbc: np.ndarray, scale: float = 1.2) -> np.ndarray:
    """[N] fragment index of every atom (0..F-1, in order of first appearance): atoms are
    bonded when closer than ``scale`` times the sum of their covalent radii (ASE's table),
    and a fragment is a connected set (through periodic images where ``pbc``)."""
    from ase.data import covalent_radii
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from fieldforce.neighbors import neighbor_pairs

    n = len(numbers)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    radii = covalent_radii[np.asarray(numbers)]
    reach = scale * 2 * float(radii.max())
    i, j, shifts = neighbor_pairs(positions, cell, pbc, reach)
    box = np.asarray(cell, dtype=float) if np.any(pbc) else np.zeros((3, 3))
    vectors = positions[j] + shifts @ box - positions[i]
    bonded = np.linalg.norm(vectors, axis=1) < scale * (radii[i] + radii[j])
    i, j = i[bonded], j[bonded]
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber in order of first appearance (stable for a given atom order)
    order = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], dtype=np.int64)


__all__ = ["Equilibrium", "equilibrate", "fragments", "self_hardness"]
