"""The PySCF finite-field labeller against PySCF itself, finite differences and exact sum rules."""

import numpy as np
import pytest
from ase import Atoms

from fieldforce import units
from fieldforce.errors import BackendError
from fieldforce.reference.backend import get_backend
from finite_differences import position_derivative

pyscf = pytest.importorskip("pyscf")

ALL = ("energy", "forces", "dipole", "polarizability", "born_charges")
# A distorted, rotated water so that no tensor component vanishes by symmetry.
WATER = Atoms("OH2", positions=[[0.02, -0.03, 0.1173], [0.1, 0.79, -0.45], [-0.05, -0.74, -0.50]])
WATER.rotate(33, "x")
WATER.rotate(-21, "y")


@pytest.fixture(scope="module")
def hf():
    # HF has no integration grid, so finite differences can be compared tightly.
    return get_backend("pyscf", xc="HF", basis="6-31g", density_fit=False, field_step=0.01)


@pytest.fixture(scope="module")
def hf_labels(hf):
    return hf.label(WATER, np.zeros(3), ALL)


def _direct_rhf():
    from pyscf import gto, scf

    mol = gto.M(atom=[(s, p) for s, p in zip(WATER.get_chemical_symbols(), WATER.positions,
                                             strict=True)], basis="6-31g", unit="Angstrom",
                verbose=0)
    mf = scf.RHF(mol)
    mf.conv_tol = 1e-12
    mf.kernel()
    return mol, mf


def test_dipole_matches_pyscf_dip_moment(hf_labels):
    _, mf = _direct_rhf()
    direct_debye = mf.dip_moment(unit="Debye", verbose=0)
    np.testing.assert_allclose(hf_labels["dipole"] / units.DEBYE, direct_debye, atol=2e-5)


def test_polarizability_matches_analytic_cphf(hf_labels):
    """Coupled-perturbed HF static polarizability, solved with pyscf.scf.cphf."""
    from pyscf import lib
    from pyscf.scf import cphf

    mol, mf = _direct_rhf()
    c, occ, e = mf.mo_coeff, mf.mo_occ, mf.mo_energy
    orbo, orbv = c[:, occ > 0], c[:, occ == 0]
    nvir, nocc = orbv.shape[1], orbo.shape[1]
    with mol.with_common_orig((0, 0, 0)):
        r = mol.intor_symmetric("int1e_r", comp=3)
    # perturbation +E.r on the electrons, in the virtual-occupied block
    h1 = lib.einsum("xpq,pa,qi->xai", r, orbv, orbo)
    vresp = mf.gen_response(hermi=1)

    def vind(mo1):
        # closed shell: first-order density 2 (C_v U C_o^T + c.c.)
        dm1 = lib.einsum("xai,pa,qi->xpq", mo1.reshape(-1, nvir, nocc), orbv, orbo)
        dm1 = (dm1 + dm1.transpose(0, 2, 1)) * 2
        return lib.einsum("xpq,pa,qi->xai", vresp(dm1), orbv, orbo).ravel()

    u = cphf.solve(vind, e, occ, h1, None, max_cycle=100, tol=1e-10)[0]
    # alpha_xy = d mu_x / d E_y = -Tr(r_x dm1_y) = -4 sum_ai h1_x[a,i] U_y[a,i]
    alpha_au = -4 * lib.einsum("xai,yai->xy", h1, u)
    np.testing.assert_allclose(hf_labels["polarizability"] / units.AU_POLARIZABILITY,
                               alpha_au, atol=2e-3 * np.abs(alpha_au).max())


def test_energy_follows_second_order_field_expansion(hf, hf_labels):
    u0, mu, alpha = float(hf_labels["energy"]), hf_labels["dipole"], hf_labels["polarizability"]
    direction = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    for strength in (0.05, 0.1):  # V/Å
        field = strength * direction
        up = float(hf.label(WATER, field, ["energy"])["energy"])
        down = float(hf.label(WATER, -field, ["energy"])["energy"])
        # even part: -1/2 E.alpha.E + O(E^4); odd part: -mu.E + O(E^3)
        even, odd = 0.5 * (up + down) - u0, 0.5 * (up - down)
        assert even == pytest.approx(-0.5 * field @ alpha @ field, rel=2e-3)
        assert odd == pytest.approx(-mu @ field, rel=1e-4)


def test_forces_in_field_are_minus_energy_gradient(hf):
    field = np.array([0.1, -0.2, 0.15])
    forces = hf.label(WATER, field, ["forces"])["forces"]
    for atom, axis in ((0, 2), (1, 0), (2, 1)):
        gradient = position_derivative(lambda a: hf.label(a, field, ["energy"])["energy"],
                                       WATER, atom, axis, 2e-4)
        assert forces[atom, axis] == pytest.approx(-gradient, abs=1e-5)


def test_dft_forces_in_field_with_density_fitting():
    backend = get_backend("pyscf", xc="PBE", basis="6-31g", density_fit=True, grid_level=4)
    field = np.array([0.0, 0.3, -0.2])
    forces = backend.label(WATER, field, ["forces"])["forces"]
    gradient = position_derivative(lambda a: backend.label(a, field, ["energy"])["energy"],
                                   WATER, 1, 1, 1e-3)
    # the integration grid moves with the atoms and PySCF leaves out its response: ~1e-4
    assert forces[1, 1] == pytest.approx(-gradient, abs=5e-4)


def test_born_charges_acoustic_sum_rule_and_dipole_derivative(hf, hf_labels):
    z = hf_labels["born_charges"]
    np.testing.assert_allclose(z.sum(axis=0), np.zeros((3, 3)), atol=1e-5)
    # Z*_{i,ab} = d mu_a / d r_{i,b}: the same tensor from moving an atom instead.
    for atom in (0, 2):
        for b in range(3):
            dmu = position_derivative(lambda a: hf.label(a, np.zeros(3), ["dipole"])["dipole"],
                                      WATER, atom, b, 1e-3)
            np.testing.assert_allclose(z[atom, :, b], dmu, atol=2e-4)


def test_born_charges_of_a_cation_sum_to_its_charge():
    hydronium = Atoms("OH3", positions=[[0, 0, 0.1], [0.95, 0, -0.2], [-0.48, 0.83, -0.2],
                                        [-0.48, -0.83, -0.25]])
    backend = get_backend("pyscf", xc="HF", basis="6-31g", charge=1, density_fit=False)
    out = backend.label(hydronium, np.array([0.0, 0.0, 0.05]), ["forces", "born_charges"])
    np.testing.assert_allclose(out["born_charges"].sum(axis=0), np.eye(3), atol=1e-5)
    # total force = Q E for a uniform field (translational invariance)
    np.testing.assert_allclose(out["forces"].sum(axis=0), [0, 0, 0.05], atol=1e-5)
    assert float(out["total_charge"]) == 1.0


def test_a_frames_own_net_charge_and_charges_from_the_population_analysis(tmp_path):
    """The labeller passes each frame's total_charge to the backend (one job, several
    charge states); meta-Löwdin charges sum to it, and a field along the O-H bond of
    hydroxide moves electrons against it (toward the end at higher potential)."""
    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames
    from fieldforce.reference.labelling import label_frames

    oh = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    backend = get_backend("pyscf", xc="HF", basis="6-31g", density_fit=False)
    frames = [Frame(oh, {"total_charge": np.array(-1.0), "efield": np.zeros(3)}),
              Frame(oh, {"total_charge": np.array(-1.0),
                         "efield": np.array([0, 0, 0.2])}),
              Frame(WATER, {"efield": np.zeros(3)})]
    out = tmp_path / "charged.xyz"
    report = label_frames(frames, out, backend, ["energy", "charges"], progress=False)
    assert report.labelled == 3
    zero, field, water = read_frames(out)
    assert float(zero.labels["total_charge"]) == -1.0
    assert zero.labels["charges"].sum() == pytest.approx(-1.0, abs=1e-8)
    assert water.labels["charges"].sum() == pytest.approx(0.0, abs=1e-8)
    assert water.labels["charges"][0] < -0.3  # oxygen negative
    # E along +z pushes electrons to -z: the H (at +z) becomes more positive
    assert field.labels["charges"][1] > zero.labels["charges"][1] + 0.01
    with pytest.raises(BackendError, match="do not fit spin"):
        backend.label(oh, np.zeros(3), ["energy"], charge=0)


def test_bad_options_are_one_clear_error():
    with pytest.raises(BackendError, match="PySCF settings: unknown key 'functional'"):
        get_backend("pyscf", functional="PBE")
    with pytest.raises(BackendError, match="unknown property polarisability"):
        get_backend("pyscf").label(WATER, np.zeros(3), ["polarisability"])
    periodic = WATER.copy()
    periodic.cell, periodic.pbc = np.eye(3) * 10, True
    with pytest.raises(BackendError, match="molecules and clusters only"):
        get_backend("pyscf").label(periodic, np.zeros(3), ["energy"])
    with pytest.raises(BackendError, match="unknown backend 'vasp'"):
        get_backend("vasp")
