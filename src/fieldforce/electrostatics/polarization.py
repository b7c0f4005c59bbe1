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
"""

from __future__ import annotations

from collections.abc import Callable

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


def _fractional(positions, cell):
    return positions @ torch.linalg.inv(cell)


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
    if not pbc_t.any():
        return charges @ positions
    s = _fractional(positions, cell)
    centre = torch.zeros_like(s) if reference is None else reference.to(s)
    wrapped = s - torch.round((s - centre).detach())
    s = torch.where(pbc_t.to(s.device), wrapped, s)
    return (charges @ s) @ cell / torch.abs(torch.det(cell))


def _phase_derivatives(positions, charges_fn, cell, pbc_t):
    """Rows of V dP/dr for the isolated/non-periodic directions and LES phases elsewhere.

    Returns [N, 3 (lattice direction a), 3 (b)]: Re[exp(-i theta_ia) d pi_a / d r_ib]
    for periodic a, d(sum_j q_j s_ja)/d r_ib for non-periodic a.
    """
    pos = positions.detach().requires_grad_(True)
    q = charges_fn(pos)
    _check_neutral(q, pbc_t)
    s = _fractional(pos, cell)
    theta = 2 * np.pi * s
    rows = []
    for a in range(3):
        if bool(pbc_t[a]):
            # pi_a = sum_j q_j (cos + i sin) / (2 pi i) = (sum q sin - i sum q cos) / 2 pi
            re = (q * torch.sin(theta[:, a])).sum() / (2 * np.pi)
            im = -(q * torch.cos(theta[:, a])).sum() / (2 * np.pi)
            g_re = torch.autograd.grad(re, pos, retain_graph=True)[0]
            g_im = torch.autograd.grad(im, pos, retain_graph=True)[0]
            t = theta[:, a, None].detach()
            rows.append(g_re * torch.cos(t) + g_im * torch.sin(t))
        else:
            rows.append(torch.autograd.grad((q * s[:, a]).sum(), pos, retain_graph=True)[0])
    return torch.stack(rows, dim=1)


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
    polarize it; a model may break this slightly).
    """
    pbc_t = _setup(positions, cell, pbc)

    def charges_fn(pos):
        return charges(pos) if callable(charges) else charges

    if not pbc_t.any():
        pos = positions.detach().requires_grad_(True)
        q = charges_fn(pos)
        _check_neutral(q, pbc_t)
        dipole = q @ pos
        z = torch.stack([torch.autograd.grad(dipole[a], pos, retain_graph=True)[0]
                         for a in range(3)], dim=1)
    else:
        derivative = _phase_derivatives(positions, charges_fn, cell, pbc_t)
        # Z*_{i,cb} = sum_a a_ac D_{i,a,b}
        z = torch.einsum("ac,iab->icb", cell.detach(), derivative)
    if acoustic_sum_rule:
        z = z - z.mean(dim=0, keepdim=True)
    return z


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
    """

    def __init__(self) -> None:
        self._previous: torch.Tensor | None = None

    def __call__(self, positions, charges, cell=None, pbc=False) -> torch.Tensor:
        pbc_t = _setup(positions, cell, pbc)
        if not pbc_t.any():
            return polarization(positions, charges, cell, pbc)
        p = polarization(positions, charges, cell, pbc, reference=self._previous)
        s = _fractional(positions.detach(), cell.detach())
        reference = torch.zeros_like(s) if self._previous is None else self._previous
        self._previous = s - torch.round(s - reference)
        return p
