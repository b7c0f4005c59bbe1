"""Coulomb sums against exact limits: Madelung constants, splitting independence,
finite differences, and the isolated-system limit of a large periodic box."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from fieldforce import units
from fieldforce.electrostatics import coulomb_energy, coulomb_potential
from fieldforce.errors import ConfigError, DataError
from finite_differences import position_derivative

# Madelung constants referred to the nearest-neighbour distance (e.g. Glasser &
# Zucker, in Theoretical Chemistry: Advances and Perspectives 5 (1980); Kittel).
MADELUNG = [
    ("NaCl", "rocksalt", 5.64, 1.747564594633, lambda a: a / 2),
    ("CsCl", "cesiumchloride", 4.12, 1.762674773070, lambda a: a * np.sqrt(3) / 2),
    ("ZnS", "zincblende", 5.41, 1.638055053388, lambda a: a * np.sqrt(3) / 4),
]


def _ionic(formula, structure, a, cubic):
    atoms = bulk(formula, structure, a=a, cubic=cubic)
    charges = np.where(atoms.numbers == atoms.numbers[0], 1.0, -1.0)
    return atoms, charges


@pytest.mark.parametrize("cubic", [False, True], ids=["primitive", "conventional"])
@pytest.mark.parametrize(("formula", "structure", "a", "madelung", "nn"), MADELUNG,
                         ids=[m[0] for m in MADELUNG])
@pytest.mark.parametrize(("method", "tolerance"), [("ewald", 1e-6), ("pme", 1e-4)])
def test_madelung_constants(formula, structure, a, madelung, nn, cubic, method, tolerance):
    atoms, q = _ionic(formula, structure, a, cubic)
    energy = coulomb_energy(atoms, q, method=method, accuracy=1e-7)
    per_pair = energy / (len(atoms) / 2)
    computed = -per_pair * nn(a) / units.COULOMB_CONSTANT
    assert abs(computed - madelung) / madelung < tolerance


def _random_cell(n=40, seed=0, neutral=True):
    rng = np.random.default_rng(seed)
    cell = np.array([[9.0, 0, 0], [2.0, 10.0, 0], [1.0, -1.5, 11.0]])
    frac = rng.uniform(0, 1, (n, 3))
    q = rng.normal(size=n)
    if neutral:
        q -= q.mean()
    atoms = Atoms(f"H{n}", scaled_positions=frac, cell=cell, pbc=True)
    return atoms, q


def _energy_forces(atoms, q, method, accuracy):
    pos = torch.tensor(atoms.positions, requires_grad=True)
    qt = torch.tensor(q)
    phi = coulomb_potential(pos, qt, torch.tensor(atoms.cell.array), atoms.pbc, method, accuracy)
    energy = 0.5 * (qt * phi).sum()
    return float(energy.detach()), -torch.autograd.grad(energy, pos)[0].numpy()


@pytest.mark.parametrize("neutral", [True, False], ids=["neutral", "charged"])
def test_energy_does_not_depend_on_the_splitting(neutral):
    from fieldforce.electrostatics.coulomb import fourier_potential

    atoms, q = _random_cell(neutral=neutral)
    pos, qt, cell = (torch.tensor(atoms.positions), torch.tensor(q),
                     torch.tensor(atoms.cell.array))
    energies = [float(0.5 * (qt * fourier_potential(pos, qt, cell, "ewald", 1e-9, rc)).sum())
                for rc in (6.0, 8.0, 11.0)]
    np.testing.assert_allclose(energies, energies[0], rtol=1e-7)


@pytest.mark.parametrize(("method", "accuracy", "tolerance"),
                         [("pme", 1e-5, 1e-5), ("pme", 1e-3, 1e-3), ("p3m", 1e-4, 1e-3)])
def test_mesh_methods_agree_with_ewald(method, accuracy, tolerance):
    atoms, q = _random_cell(seed=1)
    e_ref, f_ref = _energy_forces(atoms, q, "ewald", 1e-10)
    e, f = _energy_forces(atoms, q, method, accuracy)
    rms = np.sqrt((f_ref**2).mean())
    assert np.sqrt(((f - f_ref) ** 2).mean()) / rms < tolerance
    assert abs(e - e_ref) / abs(e_ref) < tolerance


@pytest.mark.parametrize("periodic", [True, False])
def test_forces_are_minus_energy_gradient(periodic):
    atoms, q = _random_cell(n=12, seed=2)
    if not periodic:
        atoms.pbc = False
    method = "ewald" if periodic else "direct"
    _, forces = _energy_forces(atoms, q, method, 1e-10)
    def energy(moved):
        return _energy_forces(moved, q, method, 1e-10)[0]

    for atom, axis in ((0, 0), (5, 1), (11, 2)):
        gradient = position_derivative(energy, atoms, atom, axis, 1e-5)
        assert forces[atom, axis] == pytest.approx(-gradient, rel=1e-6, abs=1e-8)


def test_direct_sum_of_two_charges():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.0, 0.0, 2.5]])
    assert coulomb_energy(atoms, [1.0, -2.0]) == pytest.approx(
        -2.0 * units.COULOMB_CONSTANT / 2.5, rel=1e-14)


def test_isolated_cluster_is_the_limit_of_a_large_periodic_box():
    rng = np.random.default_rng(3)
    cluster = Atoms("H8", positions=rng.uniform(-1.5, 1.5, (8, 3)))
    q = rng.normal(size=8)
    q -= q.mean()
    direct = coulomb_energy(cluster, q)
    dipole = q @ cluster.positions
    for box in (30.0, 60.0):
        periodic = cluster.copy()
        periodic.cell, periodic.pbc = np.eye(3) * box, True
        ewald = coulomb_energy(periodic, q, method="ewald", accuracy=1e-9)
        # Ewald sums with conducting ("tin-foil") boundaries; a vacuum boundary adds
        # 2 pi k_e |M|^2 / (3 V); in a cubic lattice the dipole images cancel.
        vacuum = ewald + 2 * np.pi * units.COULOMB_CONSTANT * dipole @ dipole / (3 * box**3)
        assert vacuum == pytest.approx(direct, abs=2e-4 * (30.0 / box) ** 5 + 1e-7)


def test_bad_input_is_one_clear_error():
    atoms, q = _random_cell(n=4)
    with pytest.raises(DataError, match="NaN"):
        coulomb_energy(atoms, [np.nan, 0, 0, 0])
    flat = atoms.copy()
    flat.cell[2] = flat.cell[0]
    with pytest.raises(DataError, match="zero volume"):
        coulomb_energy(flat, q)
    with pytest.raises(ConfigError, match="unknown Coulomb method 'fmm'"):
        coulomb_energy(atoms, q, method="fmm")
    with pytest.raises(ConfigError, match="does not converge"):
        coulomb_energy(atoms, q, method="direct")
    with pytest.raises(DataError, match="charges must have shape"):
        coulomb_energy(atoms, q[:3])


@pytest.mark.parametrize("seed", [4, 5])
def test_agrees_with_pymatgen_ewald_summation(seed):
    """An independent peer: pymatgen's EwaldSummation on random neutral triclinic cells."""
    pytest.importorskip("pymatgen")
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.core import Lattice, Structure

    atoms, q = _random_cell(n=16, seed=seed)
    structure = Structure(Lattice(atoms.cell.array), ["H"] * len(atoms), atoms.positions,
                          coords_are_cartesian=True, site_properties={"charge": q.tolist()})
    peer = EwaldSummation(structure, acc_factor=12.0, compute_forces=True)
    energy, forces = _energy_forces(atoms, q, "ewald", 1e-10)
    # pymatgen's Coulomb constant comes from its own (scipy) CODATA values:
    # compare with it rescaled to ours.
    scale = units.COULOMB_CONSTANT / EwaldSummation.CONV_FACT
    assert energy == pytest.approx(peer.total_energy * scale, rel=1e-8)
    np.testing.assert_allclose(forces, peer.forces * scale, atol=1e-7 * np.abs(forces).max())
