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

by one of two solvers (``solver``):

* ``dense``: LU of the bordered matrix (``torch.linalg.solve``), O(N³) time and O(N²)
  memory, and for a periodic cell the dense A costs N applications of the Ewald/PME
  operator. Every output is differentiable by autograd to any order (with respect to
  chi, J, w, positions and cell, through A's graph); torch differentiates the solve with
  the same LU factors. Training uses it (force losses need second derivatives).
* ``cg``: conjugate gradients on the constraint subspace (the group means projected
  out), applying A through the operator (one Ewald/PME application per iteration, O(N
  log N) with PME), to a relative residual ``tol``; for large cells and MD. Preconditioned
  (``preconditioner``) by the sparse short-range part of H inverted by multigrid
  (:mod:`~fieldforce.electrostatics.preconditioner`; ``jacobi``: by its diagonal), and
  started from ``initial`` charges when given (the previous MD step's). Derivatives
  by the implicit-function theorem: with q* converged and r(theta) = H q* + chi + C l*
  (zero in value), q = q* - S r(theta) has dq/dtheta = -S dr/dtheta exactly, where S is
  applied by another CG solve in the backward pass (one solve per backward, at fixed
  geometry). First derivatives only (forces, Born charges, the polarizability): a
  second backward pass is refused.

Energies and forces alone would need no derivative of q (E_Q is stationary in q at the
solution), but Born charges, polarizabilities and training on forces (whose parameter
gradient passes through q) do.

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
from fieldforce.electrostatics.preconditioner import (
    DEFAULT_WIDENING,
    ShortRangePreconditioner,
)
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
    iterations
        CG iterations of the solve (0 for the dense solver).
    """

    charges: torch.Tensor
    energy: torch.Tensor
    chemical_potential: torch.Tensor
    response: torch.Tensor | None = None
    iterations: int = 0


def self_hardness(widths: torch.Tensor) -> torch.Tensor:
    """k_e / (sqrt(pi) w_i) [N] V/e: the Gaussian's self-energy per q² (times 2)."""
    return units.COULOMB_CONSTANT / (math.sqrt(math.pi) * widths)


#: solvers of :func:`equilibrate`
SOLVERS = ("dense", "cg")
#: preconditioners of the ``cg`` solver
PRECONDITIONERS = ("short-range", "jacobi")


def equilibrate(operator: CoulombOperator, chi: torch.Tensor, hardness: torch.Tensor,
                widths: torch.Tensor, groups: torch.Tensor, group_charges: torch.Tensor,
                responses: torch.Tensor | None = None, solver: str = "dense",
                tol: float = 1e-10, max_iterations: int = 1000,
                preconditioner: str = "short-range", widening: float = DEFAULT_WIDENING,
                initial: torch.Tensor | None = None) -> Equilibrium:
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
    solver, tol, max_iterations
        ``dense`` or ``cg`` (module docstring); CG's relative residual and iteration
        limit (not converging is an error).
    preconditioner, widening, initial
        cg only: ``short-range`` (default) or ``jacobi``; the short-range part's Gaussian
        widening tau in Å (:mod:`~fieldforce.electrostatics.preconditioner`); a starting
        guess [N] e (any charges: the solver moves it onto the constraints). None of
        them changes the solution beyond ``tol``.
    """
    n = operator.n_atoms
    if chi.shape != (n,) or hardness.shape != (n,) or widths.shape != (n,):
        raise DataError(f"chi, hardness and widths must have shape [{n}]")
    n_groups = group_charges.shape[0]
    if groups.shape != (n,) or int(groups.min()) < 0 or int(groups.max()) >= n_groups:
        raise DataError(f"groups must be [{n}] integers in 0..{n_groups - 1}")
    if (widths <= 0).any():
        raise DataError("charge equilibration needs Gaussian widths > 0 Å")
    if solver not in SOLVERS:
        raise DataError(f"unknown charge-equilibration solver {solver!r}; expected one of "
                        f"{', '.join(SOLVERS)}")
    if preconditioner not in PRECONDITIONERS:
        raise DataError(f"unknown charge-equilibration preconditioner {preconditioner!r}; "
                        f"expected one of {', '.join(PRECONDITIONERS)}")
    if solver == "cg":
        if initial is not None and initial.shape != (n,):
            raise DataError(f"the initial charges must have shape [{n}], got "
                            f"{list(initial.shape)}")
        approximate = None
        if preconditioner == "short-range":
            positions, cell = operator.geometry
            approximate = ShortRangePreconditioner(positions, cell, operator.pbc, widths,
                                                   hardness, widening)
        return _equilibrate_cg(operator, chi, hardness + self_hardness(widths), groups,
                               group_charges.to(chi), responses, tol, max_iterations,
                               approximate, initial)
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


class _Subspace:
    """The constraint subspace {x: sum_{i in g} x_i = 0 for every group g} of a structure,
    and H restricted to it (applied through the Coulomb operator, no graph)."""

    def __init__(self, operator: CoulombOperator, diagonal: torch.Tensor,
                 groups: torch.Tensor, n_groups: int, tol: float, max_iterations: int,
                 approximate: ShortRangePreconditioner | None = None):
        self.operator, self.diagonal = operator, diagonal.detach()
        self.approximate = approximate
        #: operator applications by the CG iterations so far (forward and backward)
        self.iterations = 0
        self.groups, self.n_groups = groups, n_groups
        self.counts = torch.zeros(n_groups, dtype=diagonal.dtype, device=diagonal.device
                                  ).index_add(0, groups, torch.ones_like(self.diagonal))
        self.tol, self.max_iterations = tol, max_iterations

    def group_mean(self, x: torch.Tensor) -> torch.Tensor:
        """[G, K] means over each group of x [N, K]."""
        sums = x.new_zeros(self.n_groups, x.shape[1]).index_add(0, self.groups, x)
        return sums / self.counts[:, None]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.group_mean(x)[self.groups]

    def apply_h(self, x: torch.Tensor) -> torch.Tensor:
        """H x for x [N, K] (no graph)."""
        with torch.no_grad():
            return self.operator.potential(x) + self.diagonal[:, None] * x

    def solve(self, rhs: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, K] in the subspace with P H x = P rhs: CG on every column at once,
        preconditioned by P M^-1 P (the short-range part, else the diagonal), from
        ``start`` (projected; default 0), to a residual ``tol`` relative to |rhs| (a column
        constant over each group, e.g. dE/dq at the solution, has nothing to solve)."""
        b = self.project(rhs)
        inverse = 1.0 / self.diagonal[:, None]

        def precondition(r: torch.Tensor) -> torch.Tensor:
            if self.approximate is not None:
                return self.project(self.approximate(self.project(r)))
            return self.project(inverse * r)

        if start is None:
            x = torch.zeros_like(b)
            r = b.clone()
        else:
            x = self.project(start)
            r = b - self.project(self.apply_h(x))
        z = precondition(r)
        p = z.clone()
        rz = (r * z).sum(0)
        norm_b = rhs.norm(dim=0).clamp_min(1e-300)
        for _ in range(self.max_iterations):
            if bool((r.norm(dim=0) <= self.tol * norm_b).all()):
                return x
            hp = self.project(self.apply_h(p))
            self.iterations += 1
            curvature = (p * hp).sum(0)
            # converged columns (p = 0) stay where they are
            step = torch.where(curvature > 0, rz / curvature.clamp_min(1e-300), 0.0)
            x = x + step * p
            r = r - step * hp
            z = precondition(r)
            rz_new = (r * z).sum(0)
            p = z + torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), 0.0) * p
            rz = rz_new
        if bool((r.norm(dim=0) <= self.tol * norm_b).all()):
            return x
        worst = float((r.norm(dim=0) / norm_b).max())
        raise DataError(f"charge equilibration: CG did not reach the relative residual "
                        f"{self.tol:g} in {self.max_iterations} iterations ({worst:.2e}); "
                        "is a hardness very small?")


class _ConstantSolve(torch.autograd.Function):
    """x = S r with S the constrained inverse at fixed geometry, for residuals r that are
    zero in value (implicit differentiation): forward 0, backward S g (S is symmetric)."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, space: _Subspace) -> torch.Tensor:
        ctx.space = space
        # r is the residual of a converged solve: S r is below the solver's tolerance, and
        # solving for it (relative to |r| itself) cost as many iterations as the solve
        return torch.zeros_like(r)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if torch.is_grad_enabled():  # a backward pass with create_graph=True
            raise RuntimeError("the cg charge-equilibration solver gives first derivatives "
                               "only (S's own derivative is not in its backward pass); "
                               "second derivatives, e.g. training on forces or Born "
                               "charges, need the dense solver")
        return ctx.space.solve(grad), None


def _equilibrate_cg(operator: CoulombOperator, chi: torch.Tensor, diagonal: torch.Tensor,
                    groups: torch.Tensor, group_charges: torch.Tensor,
                    responses: torch.Tensor | None, tol: float, max_iterations: int,
                    approximate: ShortRangePreconditioner | None,
                    initial: torch.Tensor | None) -> Equilibrium:
    """The CG solver with implicit derivatives (module docstring)."""
    n_groups = group_charges.shape[0]
    space = _Subspace(operator, diagonal, groups, n_groups, tol, max_iterations,
                      approximate)
    # a particular solution of the constraints: each group's charge spread evenly
    base = (group_charges / space.counts)[groups][:, None]
    rhs = -chi.detach()[:, None] - space.apply_h(base)
    start = None
    if responses is not None:
        rhs = torch.cat([rhs, responses.detach()], 1)
    if initial is not None:
        start = torch.zeros_like(rhs)
        start[:, 0] = initial.detach().to(rhs) - base[:, 0]
    solution = space.solve(rhs, start)
    q_star = (base + solution[:, :1])[:, 0]
    # the residual H q* + chi + C l*, with the graph to chi, J, w, positions and cell
    h_q = operator.potential(q_star) + diagonal * q_star
    gradient = (h_q + chi).detach()
    mu = space.group_mean(gradient[:, None])[:, 0]  # dE/dQ_g: the group's mean gradient
    residual = h_q + chi - mu[groups]
    charges = q_star - _ConstantSolve.apply(residual[:, None], space)[:, 0]
    energy = chi @ charges + 0.5 * charges @ (operator.potential(charges) + diagonal * charges)
    response = None
    if responses is not None:
        response = solution[:, 1:]
        if responses.requires_grad or torch.is_grad_enabled():
            # dq/d(responses) = S, and S's own dependence on the geometry, through the
            # same residual form: y = y* - S (H y* - P v)
            y_star = response
            h_y = operator.potential(y_star) + diagonal[:, None] * y_star
            residual_y = space.project(h_y - responses)
            response = y_star - _ConstantSolve.apply(residual_y, space)
    return Equilibrium(charges=charges, energy=energy, chemical_potential=mu,
                       response=response, iterations=space.iterations)


def fragments(numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray,
              pbc: np.ndarray, scale: float = 1.2, whole: bool = False):
    """[N] fragment index of every atom (0..F-1, in order of first appearance): atoms are
    bonded when closer than ``scale`` times the sum of their covalent radii (ASE's table),
    and a fragment is a connected set (through periodic images where ``pbc``).

    ``whole=True`` also returns [N, 3] integer lattice shifts S that make every fragment
    whole (r_i + S_i @ cell, bonded atoms at their bond vectors), and [F] bools: whether
    each fragment is infinite (bonded to its own periodic image, e.g. a covalent or ionic
    crystal, where no choice of images makes it whole).
    """
    from ase.data import covalent_radii
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from fieldforce.neighbors import neighbor_pairs

    n = len(numbers)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, np.zeros((0, 3), np.int64), np.zeros(0, bool)) if whole else empty
    radii = covalent_radii[np.asarray(numbers)]
    reach = scale * 2 * float(radii.max())
    i, j, shifts = neighbor_pairs(positions, cell, pbc, reach)
    box = np.asarray(cell, dtype=float) if np.any(pbc) else np.zeros((3, 3))
    vectors = positions[j] + shifts @ box - positions[i]
    bonded = np.linalg.norm(vectors, axis=1) < scale * (radii[i] + radii[j])
    i, j, shifts = i[bonded], j[bonded], shifts[bonded]
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber in order of first appearance (stable for a given atom order)
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    index = np.array([order[int(label)] for label in labels], dtype=np.int64)
    if not whole:
        return index
    # breadth-first over the bonds from each fragment's first atom: S_j = S_i + shift
    neighbours: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
    for a, b, shift in zip(i, j, shifts, strict=True):
        neighbours[a].append((b, shift))
        neighbours[b].append((a, -shift))
    unwrap = np.zeros((n, 3), dtype=np.int64)
    seen = np.zeros(n, bool)
    infinite = np.zeros(len(order), bool)
    for root in range(n):
        if seen[root]:
            continue
        seen[root] = True
        queue = [root]
        while queue:
            a = queue.pop()
            for b, shift in neighbours[a]:
                target = unwrap[a] + shift
                if not seen[b]:
                    seen[b], unwrap[b] = True, target
                    queue.append(b)
                elif not np.array_equal(unwrap[b], target):
                    infinite[index[a]] = True
    return index, unwrap, infinite


__all__ = ["SOLVERS", "Equilibrium", "equilibrate", "fragments", "self_hardness"]
