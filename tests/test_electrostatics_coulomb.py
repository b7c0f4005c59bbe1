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
# Ideal wurtzite (c/a = sqrt(8/3), u = 3/8): 1.641 in Kittel and the CRC tables;
# 1.64132162737 to 12 digits is the value that ASE's Ewald test and an independent
# Julia Ewald code both assert (the 1.641 digits agree).
WURTZITE = 1.64132162737
MADELUNG = [
    ("NaCl", "rocksalt", 5.64, 1.747564594633, lambda a: a / 2),
    ("CsCl", "cesiumchloride", 4.12, 1.762674773070, lambda a: a * np.sqrt(3) / 2),
    ("ZnS", "zincblende", 5.41, 1.638055053388, lambda a: a * np.sqrt(3) / 4),
    ("ZnO", "wurtzite", 3.25, WURTZITE, lambda a: 3 / 8 * a * np.sqrt(8 / 3)),
]


def _ionic(formula, structure, a, cubic):
    if structure == "wurtzite":
        atoms = bulk(formula, structure, a=a, c=a * np.sqrt(8 / 3), u=3 / 8)
        if cubic:  # orthohexagonal cell: orthorhombic, 8 atoms
            atoms = atoms.copy()
            from ase.build import make_supercell

            atoms = make_supercell(atoms, [[1, 0, 0], [1, 2, 0], [0, 0, 1]])
    else:
        atoms = bulk(formula, structure, a=a, cubic=cubic)
    charges = np.where(atoms.numbers == atoms.numbers[0], 1.0, -1.0)
    return atoms, charges


def test_wurtzite_literature_digits():
    assert round(WURTZITE, 3) == 1.641


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
    from fieldforce.electrostatics import SplittingParameters, fourier_potential

    atoms, q = _random_cell(neutral=neutral)
    pos, qt, cell = (torch.tensor(atoms.positions), torch.tensor(q),
                     torch.tensor(atoms.cell.array))
    energies = []
    for rc in (6.0, 8.0, 11.0):
        params = SplittingParameters.for_accuracy(1e-9, rc, "ewald")
        phi = fourier_potential(pos, qt[:, None], cell, params)[:, 0]
        energies.append(float(0.5 * (qt * phi).sum()))
    np.testing.assert_allclose(energies, energies[0], rtol=1e-7)


@pytest.mark.parametrize("accuracy", [1e-4, 1e-6])
@pytest.mark.parametrize(("method", "triclinic"),
                         [("pme", True), ("pme", False), ("p3m", False)])
def test_mesh_methods_agree_with_ewald_to_the_requested_accuracy(method, triclinic, accuracy):
    atoms, q = _random_cell(n=120, seed=1)
    if not triclinic:
        atoms.set_cell(np.diag([10.0, 11.0, 12.0]), scale_atoms=True)
    e_ref, f_ref = _energy_forces(atoms, q, "ewald", 1e-11)
    e, f = _energy_forces(atoms, q, method, accuracy)
    rms = np.sqrt((f_ref**2).mean())
    assert np.sqrt(((f - f_ref) ** 2).mean()) / rms < accuracy
    assert abs(e - e_ref) / abs(e_ref) < accuracy


@pytest.mark.parametrize(("accuracy", "named"), [(1e-5, "p3m"), (1e-6, "ewald")])
def test_auto_takes_the_method_of_its_limit_and_holds_the_accuracy(accuracy, named):
    from fieldforce.electrostatics.coulomb import ewald_limit

    # 576 atoms, water's density, on a jittered grid (no overlaps): above the Ewald
    # limit at 1e-5, below it at 1e-6
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in (8, 8, 9)], indexing="ij"), -1)
    rng = np.random.default_rng(3)
    frac = (grid.reshape(-1, 3) + rng.uniform(-0.3, 0.3, (576, 3))) / (8, 8, 9)
    atoms = Atoms("H576", scaled_positions=frac, cell=np.diag([17.6, 17.6, 19.8]), pbc=True)
    q = rng.normal(scale=0.5, size=576)
    q -= q.mean()
    assert (ewald_limit(accuracy) <= 576) == (named != "ewald")
    e_ref, f_ref = _energy_forces(atoms, q, "ewald", 1e-11)
    e_auto, f_auto = _energy_forces(atoms, q, "auto", accuracy)
    e_named, f_named = _energy_forces(atoms, q, named, accuracy)
    np.testing.assert_allclose(f_auto, f_named, rtol=0, atol=1e-12)
    assert e_auto == pytest.approx(e_named, rel=1e-13)
    rms = np.sqrt((f_ref**2).mean())
    assert np.sqrt(((f_auto - f_ref) ** 2).mean()) / rms < accuracy
    assert abs(e_auto - e_ref) / abs(e_ref) < accuracy


@pytest.mark.parametrize("method", ["ewald", "pme", "p3m"])
def test_accuracy_bounds_the_force_error_on_the_coulomb_force_scale(method):
    # A nearly perfect crystal: its forces almost cancel (RMS ~ 1/10 of the force
    # scale), so this is where the meaning of ``accuracy`` matters (parameters.py).
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)
    atoms.positions += np.random.default_rng(0).uniform(-0.1, 0.1, atoms.positions.shape)
    q = np.where(atoms.numbers == 11, 1.0, -1.0)
    _, f_ref = _energy_forces(atoms, q, "ewald", 1e-11)
    scale = units.COULOMB_CONSTANT * np.mean(q**2) * (len(atoms) / atoms.get_volume()) ** (2 / 3)
    assert np.sqrt((f_ref**2).mean()) < 0.2 * scale
    for accuracy in (1e-4, 1e-6):
        _, f = _energy_forces(atoms, q, method, accuracy)
        assert np.sqrt(((f - f_ref) ** 2).mean()) / scale < accuracy


def test_p3m_is_refused_in_triclinic_cells():
    atoms, q = _random_cell(n=8)
    with pytest.raises(ConfigError, match="P3M.*triclinic"):
        coulomb_energy(atoms, q, method="p3m")


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


# --- Gaussian charges -------------------------------------------------------


def test_two_gaussian_charges_follow_the_erf_law():
    from scipy.special import erf

    atoms = Atoms("H2", positions=[[0, 0, 0], [0.3, 0.4, 1.2]])
    r = np.linalg.norm(atoms.positions[1])
    w = np.array([0.5, 0.8])
    expected = -2.0 * units.COULOMB_CONSTANT * erf(r / np.sqrt(2 * (w**2).sum())) / r
    assert coulomb_energy(atoms, [1.0, -2.0], widths=w) == pytest.approx(expected, rel=1e-13)
    # per-species widths give the same
    assert coulomb_energy(atoms, [1.0, -2.0], widths={"H": 0.5}) == pytest.approx(
        -2.0 * units.COULOMB_CONSTANT * erf(r / np.sqrt(2 * 0.5)) / r, rel=1e-13)


def _gaussian_kspace_energy(atoms, q, width):
    """Independent reference: reciprocal-space sum of equal Gaussians (pair width sqrt(2) w),
    minus their self-energies, written out in numpy."""
    cell = atoms.cell.array
    volume = abs(np.linalg.det(cell))
    g = np.sqrt(2) * width
    recip = 2 * np.pi * np.linalg.inv(cell).T
    n = 12
    grid = np.array(np.meshgrid(*[np.arange(-n, n + 1)] * 3, indexing="ij")).reshape(3, -1).T
    k = grid[np.any(grid != 0, axis=1)] @ recip
    k2 = (k**2).sum(1)
    s = np.exp(1j * k @ atoms.positions.T) @ q
    e = 2 * np.pi / volume * np.sum(np.exp(-0.5 * g**2 * k2) / k2 * np.abs(s) ** 2)
    e -= 0.5 * np.sqrt(2 / np.pi) / g * (q**2).sum()
    return units.COULOMB_CONSTANT * e


@pytest.mark.parametrize("method", ["ewald", "pme"])
def test_periodic_gaussian_charges_match_an_independent_kspace_sum(method):
    atoms, q = _random_cell(n=10, seed=7)
    width = 1.1
    reference = _gaussian_kspace_energy(atoms, q, width)
    energy = coulomb_energy(atoms, q, method=method, accuracy=1e-8, widths=width)
    assert energy == pytest.approx(reference, rel=1e-6)
    point = coulomb_energy(atoms, q, method="ewald", accuracy=1e-8)
    assert abs(energy - point) > 1e-2 * abs(point)  # the widths matter here


def test_gaussian_widths_to_zero_give_point_charges_and_forces_match_fd():
    atoms, q = _random_cell(n=10, seed=8)
    point = coulomb_energy(atoms, q, accuracy=1e-9)
    assert coulomb_energy(atoms, q, accuracy=1e-9, widths=1e-4) == pytest.approx(point, rel=1e-10)
    widths = torch.tensor(np.linspace(0.3, 1.0, len(atoms)))

    def energy(moved):
        pos = torch.tensor(moved.positions, requires_grad=True)
        qt = torch.tensor(q)
        phi = coulomb_potential(pos, qt, torch.tensor(moved.cell.array), True, "ewald", 1e-10,
                                widths)
        return 0.5 * (qt * phi).sum(), pos

    e, pos = energy(atoms)
    forces = -torch.autograd.grad(e, pos)[0].numpy()
    for atom, axis in ((0, 0), (4, 2), (9, 1)):
        gradient = position_derivative(lambda m: float(energy(m)[0].detach()), atoms, atom,
                                       axis, 1e-5)
        assert forces[atom, axis] == pytest.approx(-gradient, rel=1e-6, abs=1e-8)


# --- slabs ------------------------------------------------------------------


def _slab(height, charged=False, seed=9):
    rng = np.random.default_rng(seed)
    n = 16
    pos = np.column_stack([rng.uniform(0, 8.0, n), rng.uniform(0, 7.0, n),
                           rng.uniform(0, 4.0, n)])
    q = rng.normal(size=n)
    q -= q.mean()
    if charged:
        q[0] += 0.5
    atoms = Atoms(f"H{n}", positions=pos, cell=[8.0, 7.0, height], pbc=[True, True, False])
    return atoms, q


@pytest.mark.parametrize("charged", [False, True], ids=["neutral", "charged"])
def test_slab_correction_converges_to_the_large_vacuum_result(charged):
    reference = coulomb_energy(*_slab(400.0, charged), method="ewald", accuracy=1e-9)
    errors, uncorrected = [], []
    for height in (15.0, 30.0, 60.0):
        atoms, q = _slab(height, charged)
        errors.append(abs(coulomb_energy(atoms, q, method="ewald", accuracy=1e-9) - reference))
        atoms.pbc = True  # plain 3D Ewald: slabs interact through their dipoles
        uncorrected.append(abs(coulomb_energy(atoms, q, method="ewald", accuracy=1e-9)
                               - reference))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 2e-3 * abs(reference)
    assert uncorrected[1] > 3 * errors[1]
    # PME with the same correction agrees with Ewald
    atoms, q = _slab(30.0, charged)
    assert coulomb_energy(atoms, q, method="pme", accuracy=1e-7) == pytest.approx(
        coulomb_energy(atoms, q, method="ewald", accuracy=1e-9), rel=1e-5)


def test_slab_assumptions_are_checked():
    atoms, q = _slab(10.0)
    with pytest.raises(DataError, match="at least 3x the slab thickness"):
        coulomb_energy(atoms, q)
    atoms, q = _slab(30.0)
    atoms.cell[2] = [1.0, 0.0, 30.0]
    with pytest.raises(DataError, match="perpendicular"):
        coulomb_energy(atoms, q)
    atoms, q = _slab(30.0)
    atoms.positions[0, 2] = -1.0
    with pytest.raises(DataError, match="inside the cell"):
        coulomb_energy(atoms, q)
    atoms.pbc = [True, False, False]
    with pytest.raises(ConfigError, match="one periodic direction"):
        coulomb_energy(atoms, q)


# --- fields and stress -------------------------------------------------------


@pytest.mark.parametrize("periodic", [True, False])
def test_field_at_atoms_is_minus_the_potential_gradient(periodic):
    from fieldforce.electrostatics import coulomb_field

    atoms, q = _random_cell(n=12, seed=10)
    atoms.pbc = periodic
    q[3] = 0.0  # a probe: the field must still be right where the charge is zero
    q -= np.where(np.arange(12) == 3, 0.0, q.sum() / 11)
    method = "ewald" if periodic else "direct"
    pos = torch.tensor(atoms.positions)
    field = coulomb_field(pos, torch.tensor(q), torch.tensor(atoms.cell.array), periodic,
                          method, 1e-10).numpy()

    def potential_at_probe(moved):
        phi = coulomb_potential(torch.tensor(moved.positions), torch.tensor(q),
                                torch.tensor(moved.cell.array), periodic, method, 1e-10)
        return float(phi[3])

    for axis in range(3):
        gradient = position_derivative(potential_at_probe, atoms, 3, axis, 1e-5)
        assert field[3, axis] == pytest.approx(-gradient, rel=1e-6, abs=1e-8)
    # at charged atoms the field is the force per charge
    _, forces = _energy_forces(atoms, q, method, 1e-10)
    np.testing.assert_allclose(field[0] * q[0], forces[0], rtol=1e-8)


def test_stress_is_the_strain_derivative():
    atoms, q = _random_cell(n=10, seed=11)
    cell0 = torch.tensor(atoms.cell.array)
    pos0 = torch.tensor(atoms.positions)
    qt = torch.tensor(q)

    def energy(strain):
        deform = torch.eye(3, dtype=torch.float64) + strain
        phi = coulomb_potential(pos0 @ deform, qt, cell0 @ deform, True, "ewald", 1e-10)
        return 0.5 * (qt * phi).sum()

    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    virial = torch.autograd.grad(energy(strain), strain)[0].numpy()
    h = 1e-5
    for a, b in ((0, 0), (1, 2), (2, 0)):
        step = torch.zeros(3, 3, dtype=torch.float64)
        step[a, b] = h
        fd = (float(energy(step)) - float(energy(-step))) / (2 * h)
        assert virial[a, b] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_overlapping_atoms_and_nan_positions_are_refused():
    atoms, q = _random_cell(n=4)
    atoms.positions[1] = atoms.positions[0] + 0.01
    with pytest.raises(DataError, match="atoms 0 and 1 overlap"):
        coulomb_energy(atoms, q)
    atoms, q = _random_cell(n=4)
    atoms.positions[2, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        coulomb_energy(atoms, q)
