"""Polarization, Born effective charges and uniform-field forces against exact results:
q*I for fixed charges, sum rules, finite differences, polarization quanta."""

import numpy as np
import pytest
import torch

from fieldforce.electrostatics import (
    PolarizationTracker,
    born_charges,
    field_forces,
    polarization,
)
from fieldforce.errors import DataError

CELL = torch.tensor([[9.0, 0.0, 0.0], [2.5, 8.0, 0.0], [-1.5, 1.0, 10.0]], dtype=torch.float64)


def _system(n=10, seed=0):
    rng = np.random.default_rng(seed)
    frac = rng.uniform(0, 1, (n, 3))
    q = rng.normal(size=n)
    q -= q.mean()
    return torch.tensor(frac) @ CELL, torch.tensor(q)


def _local_charges(base, width=1.2):
    """A position-dependent, neutral charge model: charge flows between close atoms
    (minimum image in CELL), like a network's latent charges would."""
    inv = torch.linalg.inv(CELL)

    def charges(pos):
        d = pos[None, :, :] - pos[:, None, :]
        frac = d @ inv
        d = (frac - torch.round(frac)) @ CELL
        r2 = (d**2).sum(-1)
        weight = torch.exp(-r2 / (2 * width**2)) * (1 - torch.eye(len(pos), dtype=pos.dtype))
        flow = 0.3 * weight * (base[None, :] - base[:, None])
        return base + flow.sum(1)

    return charges


def test_born_charges_of_fixed_charges_are_q_times_identity_in_a_triclinic_cell():
    pos, q = _system()
    z = born_charges(pos, q, CELL, True)
    expected = q[:, None, None] * torch.eye(3, dtype=torch.float64)
    assert torch.allclose(z, expected, atol=1e-12)
    assert torch.allclose(z.sum(0), torch.zeros(3, 3, dtype=torch.float64), atol=1e-12)
    # and the isolated form
    assert torch.allclose(born_charges(pos, q), expected, atol=1e-12)


def test_isolated_born_charges_are_the_dipole_derivative():
    pos, q = _system(seed=1)
    charges = _local_charges(q)
    z = born_charges(pos, charges)
    h = 1e-6
    for atom, axis in ((0, 0), (3, 1), (7, 2)):
        step = torch.zeros_like(pos)
        step[atom, axis] = h
        fd = (polarization(pos + step, charges(pos + step))
              - polarization(pos - step, charges(pos - step))) / (2 * h)
        assert torch.allclose(z[atom, :, axis], fd, rtol=1e-6, atol=1e-8)
    # the model conserves charge, so the acoustic sum rule holds
    assert z.sum(0).abs().max() < 1e-10


def test_periodic_phase_born_charges_match_the_polarization_derivative():
    """The LES phase form equals V dP/dr up to O((2 pi d / L)^2) for charges that depend on
    neighbours within d: check it in a large cell, and that the isolated form, which ignores
    the periodic images, is wrong when a molecule is cut by the cell boundary."""
    scale = 3.0
    cell = CELL * scale
    rng = np.random.default_rng(2)
    # a compact cluster straddling a corner of the cell (atoms wrapped into the cell)
    cluster = torch.tensor(rng.normal(scale=1.0, size=(8, 3)))
    q = torch.tensor(rng.normal(size=8))
    q -= q.mean()
    inv = torch.linalg.inv(cell)
    wrapped = (cluster @ inv % 1.0) @ cell

    def charges(pos):
        d = pos[None, :, :] - pos[:, None, :]
        frac = d @ inv
        d = (frac - torch.round(frac)) @ cell
        weight = torch.exp(-(d**2).sum(-1) / 2.0) * (1 - torch.eye(len(pos), dtype=pos.dtype))
        return q + (0.3 * weight * (q[None, :] - q[:, None])).sum(1)

    z = born_charges(wrapped, charges, cell, True)
    volume = torch.det(cell).abs()
    tracker_reference = (wrapped @ inv).detach()
    h = 1e-5
    for atom, axis in ((0, 0), (5, 2)):
        step = torch.zeros_like(wrapped)
        step[atom, axis] = h
        plus = polarization(wrapped + step, charges(wrapped + step), cell, True,
                            reference=tracker_reference)
        minus = polarization(wrapped - step, charges(wrapped - step), cell, True,
                             reference=tracker_reference)
        fd = volume * (plus - minus) / (2 * h)
        # the exact answer, by the minimum-image dipole of the unwrapped cluster
        exact = torch.autograd.functional.jacobian(
            lambda p: charges(p) @ p, cluster)[:, atom, axis]
        assert torch.allclose(z[atom, :, axis], exact, atol=0.01 * exact.abs().max())
        # wrapped-coordinate polarization is cut by the boundary: its derivative is not
        assert not torch.allclose(fd, exact, atol=0.05 * exact.abs().max())


def test_polarization_jumps_by_a_quantum_when_a_charge_crosses_the_cell():
    pos, q = _system(seed=3)
    frac = pos @ torch.linalg.inv(CELL)
    frac[4, 1] = 0.499  # atom 4 sits just before the branch boundary along a_2
    volume = torch.det(CELL).abs()
    tracker = PolarizationTracker()
    before_plain = polarization(frac @ CELL, q, CELL, True)
    before = tracker(frac @ CELL, q, CELL, True)
    frac[4, 1] = 0.501
    after_plain = polarization(frac @ CELL, q, CELL, True)
    after = tracker(frac @ CELL, q, CELL, True)
    quantum = q[4] * CELL[1] / volume
    small = q[4] * 0.002 * CELL[1] / volume
    assert torch.allclose(after_plain - before_plain, small - quantum, atol=1e-12)
    assert torch.allclose(after - before, small, atol=1e-12)
    # the tracker follows many steps continuously
    steps = [tracker((frac + t * torch.tensor([0.0, 0.013, 0.0])) @ CELL, q, CELL, True)
             for t in range(1, 100)]
    jumps = torch.stack([b - a for a, b in zip(steps, steps[1:], strict=False)])
    assert torch.allclose(jumps, jumps[0].expand_as(jumps), atol=1e-12)


def test_uniform_field_force_is_born_charge_transpose_times_field():
    pos, q = _system(seed=4)
    charges = _local_charges(q)
    field = torch.tensor([0.05, -0.02, 0.08], dtype=torch.float64)
    forces = field_forces(born_charges(pos, charges), field)
    # isolated system: the field enthalpy -M.E; its negative gradient is the force
    p = pos.clone().requires_grad_(True)
    enthalpy = -(charges(p) @ p) @ field
    expected = -torch.autograd.grad(enthalpy, p)[0]
    assert torch.allclose(forces, expected, atol=1e-12)
    # fixed charges: q E
    assert torch.allclose(field_forces(born_charges(pos, q, CELL, True), field),
                          q[:, None] * field, atol=1e-12)


def test_acoustic_sum_rule_enforcement():
    pos, q = _system(seed=5)

    def leaky(p):  # charges that change total when the system moves: breaks the sum rule
        return q + 0.1 * torch.sin(p[:, 0])

    raw = born_charges(pos, leaky)
    assert raw.sum(0).abs().max() > 1e-2
    fixed = born_charges(pos, leaky, acoustic_sum_rule=True)
    assert fixed.sum(0).abs().max() < 1e-12
    assert torch.allclose(fixed, raw - raw.mean(0), atol=1e-14)


def test_charged_periodic_cell_is_refused():
    pos, q = _system(seed=6)
    with pytest.raises(DataError, match="polarization of a charged periodic cell"):
        polarization(pos, q + 0.1, CELL, True)
    with pytest.raises(DataError, match="non-zero volume"):
        polarization(pos, q, torch.zeros(3, 3, dtype=torch.float64), True)


def test_tracker_resumes_from_a_reference():
    pos, q = _system(seed=5)
    frac = pos @ torch.linalg.inv(CELL)
    step = torch.zeros_like(frac)
    step[2, 2] = 0.017  # one atom moves by a whole cell, across the branch boundary
    path = [(frac + t * step) @ CELL for t in range(60)]
    whole = PolarizationTracker()
    expected = [whole(p, q, CELL, True) for p in path]
    first = PolarizationTracker()
    for p in path[:30]:
        first(p, q, CELL, True)
    resumed = PolarizationTracker(reference=first.reference)
    again = [resumed(p, q, CELL, True) for p in path[30:]]
    assert torch.allclose(torch.stack(again), torch.stack(expected[30:]), atol=1e-14)
    fresh = PolarizationTracker()  # without the reference: the default branch
    assert not torch.allclose(fresh(path[59], q, CELL, True), expected[59], atol=1e-6)
