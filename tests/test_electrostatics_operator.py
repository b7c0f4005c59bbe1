"""CoulombOperator: the Coulomb matrix of one geometry, built once and applied to many
charge vectors. Checked against coulomb_potential, an independent direct sum, the NaCl
Madelung energy, finite differences, and for not repeating the neighbour search."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from scipy.special import erf

from fieldforce import units
from fieldforce.electrostatics import (
    CoulombOperator,
    SplittingParameters,
    coulomb_energy,
    coulomb_potential,
    fourier_potential,
)
from fieldforce.errors import DataError
from finite_differences import position_derivative

F64 = torch.float64
TRICLINIC = np.array([[9.0, 0, 0], [2.0, 10.0, 0], [1.0, -1.5, 11.0]])
ORTHORHOMBIC = np.diag([9.0, 10.0, 11.0])
SLAB = np.diag([8.0, 7.0, 30.0])


def _t(x):
    return torch.tensor(np.asarray(x, dtype=float), dtype=F64)


def _geometry(kind, n=16, seed=0):
    """positions, cell (or None) and pbc of a small random system."""
    rng = np.random.default_rng(seed)
    if kind == "isolated":
        return _t(rng.uniform(-3.0, 3.0, (n, 3))), None, False
    if kind == "slab":
        pos = np.column_stack([rng.uniform(0, 8.0, n), rng.uniform(0, 7.0, n),
                               rng.uniform(0, 4.0, n)])
        return _t(pos), _t(SLAB), [True, True, False]
    cell = TRICLINIC if kind == "triclinic" else ORTHORHOMBIC
    return _t(rng.uniform(0, 1, (n, 3)) @ cell), _t(cell), True


def _charges(n, seed, channels=None, neutral=True):
    rng = np.random.default_rng(100 + seed)
    q = rng.normal(size=(n,) if channels is None else (n, channels))
    if neutral:
        q -= q.mean(axis=0)
    return _t(q)


# (geometry, method, Gaussian widths?)
CASES = [
    ("isolated", "direct", False),
    ("isolated", "direct", True),
    ("orthorhombic", "ewald", False),
    ("orthorhombic", "pme", False),
    ("triclinic", "pme", False),
    ("triclinic", "ewald", True),
    ("slab", "ewald", True),
]
IDS = [f"{g}-{m}{'-gauss' if w else ''}" for g, m, w in CASES]


def _build(kind, method, gaussian, accuracy=1e-5):
    pos, cell, pbc = _geometry(kind)
    widths = _t(np.linspace(0.3, 1.0, len(pos))) if gaussian else None
    operator = CoulombOperator(pos, cell, pbc, method, accuracy, widths)
    return operator, (pos, cell, pbc, method, accuracy, widths)


def _relmax(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize(("kind", "method", "gaussian"), CASES, ids=IDS)
def test_operator_gives_the_numbers_of_coulomb_potential(kind, method, gaussian):
    operator, args = _build(kind, method, gaussian)
    pos, cell, pbc, method, accuracy, widths = args
    assert operator.method == method and operator.n_atoms == len(pos)
    assert (operator.params is None) == (method == "direct")
    # several charge sets through one operator, one and several channels
    for q in (_charges(len(pos), 1), _charges(len(pos), 2, channels=3)):
        reference = coulomb_potential(pos, q, cell, pbc, method, accuracy, widths)
        phi = operator(q)
        assert phi.shape == q.shape
        assert _relmax(phi, reference) < 1e-12
        assert _relmax(operator.potential(q), reference) < 1e-12
    if method != "direct" and not gaussian:
        # the low-level torch-pme path, with its own neighbour list
        q = _charges(len(pos), 3, channels=2)
        periodic = None if pbc is True else torch.tensor(pbc)
        reference = fourier_potential(pos, q, cell, operator.params, periodic)
        assert _relmax(operator(q), reference) < 1e-12


@pytest.mark.parametrize("gaussian", [False, True], ids=["point", "gauss"])
def test_isolated_matrix_is_the_direct_kernel(gaussian):
    operator, (pos, _, _, _, _, widths) = _build("isolated", "auto", gaussian)
    assert operator.method == "direct" and operator.params is None
    x = pos.numpy()
    r = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(r, 1.0)
    kernel = 1.0 / r
    if gaussian:
        w = widths.numpy()
        kernel = erf(r / np.sqrt(2 * (w[:, None] ** 2 + w[None] ** 2))) / r
    np.fill_diagonal(kernel, 0.0)
    expected = units.COULOMB_CONSTANT * kernel
    np.testing.assert_allclose(operator.matrix().numpy(), expected, rtol=1e-13, atol=0)
    q = _charges(len(pos), 4)
    np.testing.assert_allclose(operator(q).numpy(), expected @ q.numpy(), rtol=1e-12,
                               atol=1e-12 * np.abs(expected @ q.numpy()).max())


@pytest.mark.parametrize(("kind", "method", "gaussian"), CASES, ids=IDS)
def test_operator_is_linear_and_symmetric_and_its_matrix_agrees(kind, method, gaussian):
    operator, _ = _build(kind, method, gaussian)
    n = operator.n_atoms
    # charged sets: a background or slab term that is not linear in q would show
    q1, q2 = _charges(n, 5, neutral=False), _charges(n, 6, neutral=False)
    a, b = 0.7, -2.3
    phi1, phi2 = operator(q1), operator(q2)
    assert _relmax(operator(a * q1 + b * q2), a * phi1 + b * phi2) < 1e-12
    scale = float(q1.norm() * phi2.norm())
    assert abs(float(q1 @ phi2) - float(q2 @ phi1)) < 1e-12 * scale

    matrix = operator.matrix()
    assert matrix.shape == (n, n)
    q = torch.stack([q1, q2], dim=1)
    assert _relmax(matrix @ q, torch.stack([phi1, phi2], dim=1)) < 1e-12
    assert float((matrix - matrix.T).abs().max()) < 1e-12 * float(matrix.abs().max())
    if method == "direct":
        assert float(matrix.diagonal().abs().max()) == 0.0
    # the energy is 1/2 q·A q, one number per channel
    energy = operator.energy(q)
    assert energy.shape == (2,)
    assert _relmax(energy, 0.5 * (q * (matrix @ q)).sum(0)) < 1e-12


@pytest.mark.parametrize("method", ["ewald", "pme"])
def test_nacl_madelung_energy_from_the_matrix(method):
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    q = _t(np.where(atoms.numbers == 11, 1.0, -1.0))
    operator = CoulombOperator(_t(atoms.positions), _t(atoms.cell.array), True, method, 1e-8)
    matrix = operator.matrix()
    energy = 0.5 * float(q @ matrix @ q)
    madelung = -1.747564594633 * units.COULOMB_CONSTANT / (5.64 / 2) * len(atoms) / 2
    assert energy == pytest.approx(madelung, rel=1e-6 if method == "ewald" else 1e-5)
    assert energy == pytest.approx(-8.92351, abs=2e-4)
    assert energy == pytest.approx(coulomb_energy(atoms, q.numpy(), method, 1e-8), rel=1e-12)
    assert float(operator.energy(q)) == pytest.approx(energy, rel=1e-12)


@pytest.mark.parametrize("kind", ["isolated", "triclinic", "slab"])
def test_autograd_forces_through_the_stored_geometry_match_finite_differences(kind):
    pos0, cell, pbc = _geometry(kind, n=8, seed=8)
    method = "direct" if kind == "isolated" else "ewald"
    widths = _t(np.linspace(0.3, 1.0, 8))
    q = _charges(8, 9, neutral=kind != "slab")

    def operator_at(positions):
        return CoulombOperator(positions, cell, pbc, method, 1e-6, widths)

    pos = pos0.clone().requires_grad_(True)
    charges = q.clone().requires_grad_(True)
    operator = operator_at(pos)
    for _ in range(3):  # solver-like applications that need no graph
        with torch.no_grad():
            operator(q)
    energy = operator.energy(charges)
    gradient, potential_from_grad = torch.autograd.grad(energy, (pos, charges))
    # dU/dq = A q (A symmetric)
    assert _relmax(potential_from_grad, operator(q).detach()) < 1e-12

    atoms = Atoms("H8", positions=pos0.numpy())

    def energy_at(moved):  # a new operator per displaced geometry
        return float(operator_at(_t(moved.positions)).energy(q))

    for atom, axis in ((0, 0), (7, 2)):
        force = -position_derivative(energy_at, atoms, atom, axis, 1e-5)
        assert float(-gradient[atom, axis]) == pytest.approx(force, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("kind", ["isolated", "triclinic", "slab"])
def test_neighbour_lists_are_built_once(kind, monkeypatch):
    import fieldforce.electrostatics.coulomb as coulomb

    calls = []
    original = coulomb.neighbor_pairs

    def counting(*args, **kwargs):
        calls.append(args[3])
        return original(*args, **kwargs)

    monkeypatch.setattr(coulomb, "neighbor_pairs", counting)
    pos, cell, pbc = _geometry(kind)
    widths = _t(np.full(len(pos), 0.5))
    method = "direct" if kind == "isolated" else "ewald"
    operator = CoulombOperator(pos, cell, pbc, method, 1e-6, widths)
    built = len(calls)
    # overlap check, plus real-space and width pairs when periodic
    assert built == (1 if kind == "isolated" else 3)
    q = _charges(len(pos), 10)
    for _ in range(5):
        operator(q)
    operator.energy(q)
    assert len(calls) == built
    # the counter sees the searches of a one-shot call
    coulomb_potential(pos, q, cell, pbc, method, 1e-6, widths)
    assert len(calls) == 2 * built


def test_operators_sharing_a_cached_calculator_do_not_interfere():
    # the same splitting parameters give the same (cached) torch-pme calculator
    pos1, cell1, _ = _geometry("triclinic", seed=11)
    pos2, cell2, _ = _geometry("orthorhombic", seed=12)
    ops = [CoulombOperator(p, c, True, "pme", 1e-6, cutoff=6.0) for p, c in
           ((pos1, cell1), (pos2, cell2))]
    assert ops[0].params == ops[1].params == SplittingParameters.for_accuracy(1e-6, 6.0, "pme")
    q = _charges(16, 13)
    first = ops[0](q)
    ops[1](q)
    assert _relmax(ops[0](q), first) < 1e-14
    reference = coulomb_potential(pos1, q, cell1, True, "pme", 1e-6, cutoff=6.0)
    assert _relmax(first, reference) < 1e-12


def test_operator_keeps_its_geometry_and_checks_charges():
    pos, cell, pbc = _geometry("triclinic")
    q = _charges(len(pos), 14)
    operator = CoulombOperator(pos, cell, pbc, "ewald")
    before = operator(q)
    pos[0] += 0.3  # moving the caller's tensor does not move the operator's atoms
    assert _relmax(operator(q), before) < 1e-14
    with pytest.raises(DataError, match="charges must have shape"):
        operator(q[:-1])
    with pytest.raises(DataError, match="NaN"):
        operator(torch.full_like(q, float("nan")))
    with pytest.raises(DataError, match="float32"):
        operator(q.float())
