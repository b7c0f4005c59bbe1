"""Polarization, Born effective charges and the force of a uniform field, for any charges.

Units: charges e, positions Å, dipole e·Å, polarization e/Å² (cell dipole / volume),
Born charges e, fields V/Å, forces eV/Å.

Isolated systems: P is the dipole M = sum_i q_i r_i and Z*_{i,ab} = dM_a/dr_ib by
autograd, exactly.

Periodic directions: the position of a charge along lattice vector a_a is a phase,
theta_ia = 2 pi s_ia (s fractional coordinates), defined only modulo 2 pi. The
polarization is

    P = (1/V) sum_a a_a sum_i q_i theta_ia / (2 pi)

with every phase on a chosen branch: in [-pi, pi) by default, so P jumps by one
quantum q_i a_a / V when charge i crosses the cell boundary; or, for a trajectory,
the branch nearest the previous frame's (:class:`PolarizationTracker`), which
keeps P(t) continuous. Non-periodic directions (slabs) use s itself.

Born charges in periodic directions use the LES "Berry-phase-like" form (Cheng et
al., the latent Ewald summation papers): with pi_a = sum_j q_j exp(i theta_ja) / (2 pi i),

    Z*_{i,cb} = sum_a a_ac Re[ exp(-i theta_ia) d pi_a / d r_ib ]

which does not depend on the branch or on where molecules are cut by the cell,
equals q_i I exactly for fixed charges in any (triclinic) cell, and equals V dP/dr
up to O((2 pi d / L)²) for charges that depend on neighbours within d. The
charges must sum to zero in a periodic cell.

:func:`batch_born_charges` and :func:`batch_dipoles` do the same for a whole batch
of structures (isolated and periodic mixed) at once; :func:`born_charges` and
:func:`polarization` are their one-structure forms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fieldforce.errors import DataError

Charges = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


def _setup(positions, cell, pbc):
    pbc_t = torch.as_tensor(np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy())
    if pbc_t.any():
        if cell is None or abs(float(torch.det(cell.detach()))) < 1e-8:
            raise DataError("polarization of a periodic system needs a cell with non-zero "
                            "volume")
    return pbc_t


def _check_neutral(charges: torch.Tensor, pbc_t: torch.Tensor) -> None:
    if not torch.isfinite(charges).all():
        raise DataError("charges contain NaN or inf")
    total = float(charges.detach().sum())
    if pbc_t.any() and abs(total) > 1e-6 * max(1.0, float(charges.detach().abs().sum())):
        raise DataError(f"charges sum to {total:.3g} e: the polarization of a charged "
                        "periodic cell is not defined; pass neutral charges")


def _one_structure(positions, cell, pbc_t):
    """Batch tensors (cell [1, 3, 3], pbc [1, 3], structure index [N]) of one structure."""
    if cell is None:
        cell = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device)
    index = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
    return cell[None], pbc_t[None].to(positions.device), index


def _lattice(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] basis of each structure: its (detached) cell if any direction is
    periodic, else the identity (so "fractional" coordinates are Cartesian ones)."""
    periodic = pbc.any(dim=1)
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand_as(cell)
    lattice = torch.where(periodic[:, None, None], cell.detach(), eye)
    volume = torch.linalg.det(lattice).abs()
    if bool((volume[periodic] < 1e-8).any()):
        raise DataError("polarization of a periodic system needs a cell with non-zero volume")
    return lattice


def _check_batch(charges, pbc, structure_index, n_structures):
    if not torch.isfinite(charges).all():
        raise DataError("charges contain NaN or inf")
    q = charges.detach()
    total = torch.zeros(n_structures, dtype=q.dtype, device=q.device)
    total = total.index_add(0, structure_index, q)
    size = torch.zeros_like(total).index_add(0, structure_index, q.abs())
    charged = pbc.any(dim=1) & (total.abs() > 1e-6 * size.clamp_min(1.0))
    if bool(charged.any()):
        b = int(torch.nonzero(charged)[0])
        raise DataError(f"charges of structure {b} sum to {float(total[b]):.3g} e: the "
                        "polarization of a charged periodic cell is not defined; pass "
                        "neutral charges")


def batch_dipoles(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    structure_index: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dipole of every structure of a batch, [B, 3] e·Å.

    Isolated structures: M = sum_i q_i r_i. Structures with a periodic direction:
    the cell dipole V P = sum_i q_i s_i @ cell, every periodic fractional
    coordinate s on the branch nearest ``reference`` [N, 3] (default 0, i.e. in
    [-1/2, 1/2)); divide by the volume for the polarization (e/Å²). Neutrality is
    not checked here (:func:`polarization` does).
    """
    pbc = pbc.to(torch.bool)
    lattice = _lattice(cell, pbc)
    s = torch.einsum("ni,nij->nj", positions, torch.linalg.inv(lattice)[structure_index])
    centre = torch.zeros_like(s) if reference is None else reference.to(s)
    wrapped = s - torch.round((s - centre).detach())
    s = torch.where(pbc[structure_index], wrapped, s)
    moments = torch.zeros(cell.shape[0], 3, dtype=s.dtype, device=s.device)
    moments = moments.index_add(0, structure_index, charges[:, None] * s)
    return torch.einsum("ba,bac->bc", moments, lattice)


def polarization(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor | None = None,
    pbc=False,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dipole [3] e·Å (isolated) or polarization [3] e/Å² (any periodic direction).

    ``reference``: fractional coordinates [N, 3] whose branch to follow (previous
    frame of a trajectory); None puts every periodic phase in [-pi, pi).
    """
    pbc_t = _setup(positions, cell, pbc)
    _check_neutral(charges, pbc_t)
    cells, pbcs, index = _one_structure(positions, cell, pbc_t)
    dipole = batch_dipoles(positions, charges, cells, pbcs, index, reference)[0]
    if not pbc_t.any():
        return dipole
    return dipole / torch.abs(torch.det(cell))


def _fractional(positions, cell):
    return positions @ torch.linalg.inv(cell)


def batch_born_charges(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    structure_index: torch.Tensor,
    total_charge: torch.Tensor | None = None,
    acoustic_sum_rule: bool = False,
    create_graph: bool = False,
    structures: torch.Tensor | None = None,
    directions: Sequence[int] | None = None,
) -> torch.Tensor:
    """Born effective charges of every atom of a batch, [N, 3, 3] e (Z*_{i,ab} = V dP_a/dr_ib).

    Parameters
    ----------
    positions
        [N, 3] Å, requiring grad; ``charges`` must have been computed from them.
    charges
        [N] e, a differentiable function of ``positions`` (or constants).
    cell, pbc, structure_index
        [B, 3, 3] Å, [B, 3] bool, [N]: the batch's geometry.
    total_charge
        [B] e, the net charge of each structure (default 0): the target of the
        acoustic sum rule.
    acoustic_sum_rule
        subtract the per-structure mean so that sum_i Z*_i = Q I exactly (Q the net
        charge; 0 for neutral structures): moving a whole structure must not
        polarize it beyond carrying its net charge.
    create_graph
        keep Z* differentiable (training on Born charges).
    structures
        [B] bool: compute only these structures (the others get zeros).
    directions
        lattice directions a to differentiate along (default all three); the others'
        derivative rows are left zero. Enough for Z*ᵀE when E·L_a = 0 for the rest (a
        field along one axis of an orthorhombic cell: two backward passes, not six);
        the result is then not the full Born charge.

    Atoms of one structure do not change the charges of another, so each sum
    sum_j q_j f(r_j) over all atoms of the batch gives, by one backward pass, the
    derivatives for every atom at once: per lattice direction a, one pass for
    sum q sin(theta_a) / 2 pi (periodic along a; for other structures, sum q s_a in
    the same pass) and, only if some structure is periodic along a, one for
    -sum q cos(theta_a) / 2 pi: at most six passes for the whole batch, three for
    isolated structures. The math is that of :func:`born_charges` (module docstring).
    """
    if not positions.requires_grad:
        raise ValueError("Born charges need positions that require grad, with the charges "
                         "computed from them")
    pbc = pbc.to(torch.bool)
    n_structures = cell.shape[0]
    _check_batch(charges, pbc, structure_index, n_structures)
    lattice = _lattice(cell, pbc)
    s = torch.einsum("ni,nij->nj", positions, torch.linalg.inv(lattice)[structure_index])
    theta = 2 * np.pi * s
    atom_pbc = pbc[structure_index]
    weight = charges
    if structures is not None:
        weight = charges * structures.to(charges)[structure_index]

    def gradient(scalar):
        grad = torch.autograd.grad(scalar, positions, retain_graph=True,
                                   create_graph=create_graph, allow_unused=True)[0]
        return torch.zeros_like(positions) if grad is None else grad

    rows = []
    for a in range(3):
        if directions is not None and a not in directions:
            rows.append(torch.zeros_like(positions))
            continue
        periodic = atom_pbc[:, a]
        # pi_a = sum_j q_j exp(i theta_ja) / (2 pi i) = (sum q sin - i sum q cos) / 2 pi
        real = torch.where(periodic, torch.sin(theta[:, a]) / (2 * np.pi), s[:, a])
        g_real = gradient((weight * real).sum())
        if not bool(periodic.any()):
            rows.append(g_real)
            continue
        imag = torch.where(periodic, -torch.cos(theta[:, a]) / (2 * np.pi),
                           torch.zeros_like(s[:, a]))
        g_imag = gradient((weight * imag).sum())
        t = theta[:, a, None].detach()
        rows.append(torch.where(periodic[:, None], g_real * torch.cos(t) + g_imag * torch.sin(t),
                                g_real))
    derivative = torch.stack(rows, dim=1)  # [N, a (lattice direction), b]
    # Z*_{i,cb} = sum_a L_ac D_{i,a,b}, L the structure's lattice (identity if isolated)
    z = torch.einsum("nac,nab->ncb", lattice[structure_index], derivative)
    if acoustic_sum_rule:
        eye = torch.eye(3, dtype=z.dtype, device=z.device)
        q_total = (torch.zeros(n_structures, dtype=z.dtype, device=z.device)
                   if total_charge is None else total_charge.to(z))
        counts = torch.bincount(structure_index, minlength=n_structures).to(z)
        sums = torch.zeros(n_structures, 3, 3, dtype=z.dtype, device=z.device)
        sums = sums.index_add(0, structure_index, z)
        excess = (sums - q_total[:, None, None] * eye) / counts.clamp_min(1)[:, None, None]
        if structures is not None:
            excess = excess * structures.to(z)[:, None, None]
        z = z - excess[structure_index]
    return z


def born_charges(
    positions: torch.Tensor,
    charges: Charges,
    cell: torch.Tensor | None = None,
    pbc=False,
    acoustic_sum_rule: bool = False,
) -> torch.Tensor:
    """Born effective charges Z*_{i,ab} = V dP_a / dr_ib, [N, 3, 3] in e.

    ``charges``: fixed charges [N] e, or a function positions [N, 3] -> charges [N]
    (e.g. a network), differentiated by autograd. ``acoustic_sum_rule`` subtracts
    the mean so that sum_i Z*_i = 0 exactly (translating the whole system must not
    polarize it; a model may break this slightly). One structure of
    :func:`batch_born_charges`.
    """
    pbc_t = _setup(positions, cell, pbc)
    pos = positions.detach().requires_grad_(True)
    q = charges(pos) if callable(charges) else charges
    _check_neutral(q, pbc_t)
    cells, pbcs, index = _one_structure(pos, cell, pbc_t)
    return batch_born_charges(pos, q, cells, pbcs, index,
                              acoustic_sum_rule=acoustic_sum_rule)


def field_forces(born: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Force of a uniform field on each atom, F_i = Z*_i^T E: [N, 3] eV/Å.

    ``born`` [N, 3, 3] e, ``field`` [3] V/Å (F_ib = sum_a Z*_{i,ab} E_a).
    """
    return torch.einsum("iab,a->ib", born, torch.as_tensor(field).to(born))


class PolarizationTracker:
    """Continuous polarization along a trajectory (the branch of the previous frame).

    Call it on consecutive frames; each phase is put on the branch nearest its
    value in the previous frame, so P(t) has no quantum jumps as long as no atom
    moves by half a cell between two frames.

    ``reference``: fractional coordinates [N, 3] of the branch to continue (the
    previous frame's, on its branch; e.g. when a trajectory is resumed); None starts
    on the default branch, every periodic phase in [-pi, pi). :attr:`reference`
    holds the branch of the last frame seen.
    """

    def __init__(self, reference: torch.Tensor | None = None) -> None:
        self._previous: torch.Tensor | None = (
            None if reference is None else torch.as_tensor(reference).detach().clone())

    @property
    def reference(self) -> torch.Tensor | None:
        """Fractional coordinates [N, 3] of the last frame, on its branch (None before)."""
        return self._previous

    def __call__(self, positions, charges, cell=None, pbc=False) -> torch.Tensor:
        pbc_t = _setup(positions, cell, pbc)
        if not pbc_t.any():
            return polarization(positions, charges, cell, pbc)
        p = polarization(positions, charges, cell, pbc, reference=self._previous)
        s = _fractional(positions.detach(), cell.detach())
        reference = torch.zeros_like(s) if self._previous is None else self._previous.to(s)
        self._previous = s - torch.round(s - reference)
        return p
