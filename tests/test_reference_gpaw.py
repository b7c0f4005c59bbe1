"""GPAW backend: field sign and linear response, forces vs finite differences, input checks."""

import numpy as np
import pytest
from ase import Atoms

from fieldforce.errors import BackendError
from fieldforce.reference.backend import get_backend
from finite_differences import position_derivative

pytest.importorskip("gpaw")

H2 = Atoms("H2", positions=[[0, 0, 0], [0.2, 0.1, 0.74]])
H2.center(vacuum=4.1)


@pytest.fixture(scope="module")
def lda():
    return get_backend("gpaw", h=0.22, xc="LDA")


@pytest.fixture(scope="module")
def h2_response(lda):
    field = np.array([0.0, 0.0, 0.1])
    return field, [lda.label(H2, s * field, ["energy", "forces", "dipole"]) for s in (0, 1, 2)]


def test_induced_dipole_is_parallel_and_linear_and_energy_quadratic(h2_response):
    field, (zero, one, two) = h2_response
    d1, d2 = one["dipole"] - zero["dipole"], two["dipole"] - zero["dipole"]
    assert d1[2] > 0  # F = qE: electrons move against E, the dipole grows along E
    np.testing.assert_allclose(d2, 2 * d1, rtol=0.02, atol=1e-5)
    alpha_zz = d1[2] / field[2]
    # U(E) - U(0) = -mu0.E - 1/2 alpha E^2 (mu0 = 0 for H2 by symmetry, up to the grid)
    for result, scale in ((one, 1), (two, 2)):
        expected = -zero["dipole"] @ (scale * field) - 0.5 * alpha_zz * (scale * field[2]) ** 2
        assert float(result["energy"] - zero["energy"]) == pytest.approx(expected, rel=0.03)


def test_forces_in_field_are_minus_energy_gradient(lda, h2_response):
    field, (_, _, two) = h2_response
    gradient = position_derivative(lambda a: lda.label(a, 2 * field, ["energy"])["energy"],
                                   H2, 1, 2, 1e-3)
    assert two["forces"][1, 2] == pytest.approx(-gradient, abs=1e-4)
    # a neutral molecule feels no net force in a uniform field (up to the grid's egg-box error)
    assert np.abs(two["forces"].sum(axis=0)).max() < 2e-3


#: the Al slab's level of theory: 2x2 k-points are enough for the identities tested here
#: (Gauss's law holds to 0.3 %, the enthalpy's field derivatives to 1e-4) at a third of
#: the cost of 4x4
AL = {"xc": "LDA", "mode": "fd", "h": 0.25, "kpts": (2, 2), "min_vacuum": 3.9}


def _al100():
    """Al(100), 1x1, three layers: the cheapest slab that screens a field like a metal."""
    from ase.build import fcc100

    return fcc100("Al", size=(1, 1, 3), vacuum=4.0)


@pytest.fixture(scope="module")
def al_backend():
    return get_backend("gpaw", **AL)


@pytest.fixture(scope="module")
def al_response(al_backend):
    props = ["energy", "forces", "dipole", "polarizability"]
    return [al_backend.label(_al100(), np.array([0, 0, f]), props) for f in (0.15, 0.25)]


def test_slab_labels_obey_the_electric_enthalpy(al_response):
    """The labelled field is the one the surfaces feel, not the applied strength: then the
    energy's field derivative is minus the dipole, and the dipole's is the polarizability
    (both would miss by the box's field enhancement, ~2.5x here, with the applied one)."""
    one, two = al_response
    f1, f2 = one["efield"][2], two["efield"][2]
    assert one["info"]["field_applied"] < 0.6 * f1  # the walls enhance the field
    assert np.abs(one["efield"][:2]).max() == 0 and one["dipole"][:2].tolist() == [0, 0]
    mu1, mu2 = one["dipole"][2], two["dipole"][2]
    slope = (two["energy"] - one["energy"]) / (f2 - f1)
    assert slope == pytest.approx(-(mu1 + mu2) / 2, rel=0.01)
    alpha = (mu2 - mu1) / (f2 - f1)
    assert one["polarizability"][2, 2] == pytest.approx(alpha, rel=0.02)
    assert two["polarizability"][2, 2] == pytest.approx(alpha, rel=0.02)
    assert alpha > 0  # electrons move against the field: the dipole grows along it
    for result in (one, two):  # Gauss: eps0 dF of charge per area above the middle
        assert result["info"]["gauss_ratio"] == pytest.approx(1.0, abs=0.01)
        assert np.abs(result["forces"].sum(axis=0)).max() < 0.02


def test_a_frames_later_scf_runs_restart_from_the_previous_field(al_response):
    """The polarizability's ± runs (and any field correction) restart from the previous
    run's converged density instead of atomic guesses: the labels are those of runs from
    scratch within the SCF tolerance, in fewer iterations."""
    props = ["energy", "forces", "dipole", "polarizability"]
    scratch = get_backend("gpaw", **AL, reuse_scf=False).label(
        _al100(), np.array([0, 0, 0.15]), props)
    warm = al_response[0]
    assert warm["info"]["field_applied"] == scratch["info"]["field_applied"]
    assert float(warm["energy"]) == pytest.approx(float(scratch["energy"]), abs=1e-5)
    assert warm["dipole"][2] == pytest.approx(scratch["dipole"][2], abs=1e-4)
    assert warm["polarizability"][2, 2] == pytest.approx(scratch["polarizability"][2, 2],
                                                         rel=2e-3)
    np.testing.assert_allclose(warm["forces"], scratch["forces"], atol=1e-4)
    first, *later = warm["info"]["scf_iterations"]
    assert first == scratch["info"]["scf_iterations"][0]  # the same first run
    assert sum(later) < 0.9 * sum(scratch["info"]["scf_iterations"][1:])


def test_slab_energy_is_the_free_energy_the_forces_differentiate():
    """A metal's smeared occupations: the labelled energy is Mermin's free energy E - TS,
    whose position derivative is the force GPAW reports (central differences of the top
    atom's height); GPAW's zero-smearing extrapolation, ASE's default energy, is not
    (here it misses by ~14 % of the force). Each run gives both flavours: the label's
    own, and the other in ``info`` (the same SCF, so the same geometry and field)."""
    field = np.array([0.0, 0.0, 0.2])
    # 4x4 k-points: at 2x2 the two flavours' slopes differ by only 1 % of the force
    backend = get_backend("gpaw", **{**AL, "kpts": (4, 4)}, field_tol=0.5)
    centre = backend.label(_al100(), field, ["energy", "forces"])
    force = centre["forces"][2, 2]
    assert float(centre["energy"]) < centre["info"]["energy_extrapolated"]  # F < E - TS/2
    shifted = []
    for step in (0.01, -0.01):
        slab = _al100()
        slab.positions[2, 2] += step
        shifted.append(backend.label(slab, field, ["energy"]))
    misses = {}
    for flavour, energy in (("free", lambda r: float(r["energy"])),
                            ("extrapolated", lambda r: r["info"]["energy_extrapolated"])):
        slope = (energy(shifted[0]) - energy(shifted[1])) / 0.02
        misses[flavour] = abs(force + slope) / abs(force)
    assert misses["free"] < 0.025
    assert misses["extrapolated"] > 0.05


def test_reenergize_replaces_only_the_energy_once_the_run_repeats_the_label(tmp_path,
                                                                          monkeypatch):
    """``make_metal reenergize``: one SCF run per frame gives the free energy a direct
    free-energy label gives; forces and dipole are kept; the run's extrapolated enthalpy
    repeats the old label; a set the run does not repeat is refused, naming frame and key."""
    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames, write_frames
    from fieldforce.datasets import make_metal as mm
    from fieldforce.errors import BackendError
    from fieldforce.reference.labelling import label_frames

    cheap = {**AL, "field_tol": 0.5}
    monkeypatch.setattr(mm, "SETTINGS", cheap)
    field = np.array([0.0, 0.0, 0.2])
    old, new = tmp_path / "old.xyz", tmp_path / "new.xyz"
    label_frames([Frame(_al100(), {"efield": field})], old,
                 mm.dataset_backend(energy="extrapolated"), ["energy", "forces", "dipole"],
                 progress=False)
    assert mm.main(["reenergize", str(old), str(new)]) == 0
    (before,), (after,) = read_frames(old), read_frames(new)
    free = mm.dataset_backend()  # the dataset's settings label the free energy
    direct = free.label(_al100(), field, ["energy"])
    assert float(after.labels["energy"]) == pytest.approx(float(direct["energy"]), abs=1e-6)
    # Mermin's F = E - TS lies below the extrapolation E - TS/2
    assert float(after.labels["energy"]) < float(before.labels["energy"])
    assert after.atoms.info["energy_extrapolated"] == float(before.labels["energy"])
    assert after.atoms.info["label_fingerprint"] == free.settings_fingerprint()
    for key in ("forces", "dipole", "efield"):
        np.testing.assert_array_equal(after.labels[key], before.labels[key])
    before.labels["dipole"] = before.labels["dipole"] + 0.01
    write_frames([before], old)
    with pytest.raises(BackendError, match=r"frame 0: the new run does not repeat the old "
                                           r"label's dipole"):
        mm.main(["reenergize", str(old), str(tmp_path / "refused.xyz")])
    assert not (tmp_path / "refused.xyz").exists()
    with pytest.raises(BackendError, match=r"new.xyz, frame 0: key 'label_fingerprint'"):
        mm.main(["reenergize", str(new), str(tmp_path / "twice.xyz")])  # free already


def test_slab_checks_are_one_clear_error(al_backend):
    from ase.constraints import FixAtoms

    slab = _al100()
    slab.set_constraint(FixAtoms(indices=[int(np.argmax(slab.positions[:, 2]))]))
    with pytest.raises(BackendError, match="fixed atoms are not the bottom layers"):
        al_backend.label(slab, np.zeros(3), ["energy"])
    strict = get_backend("gpaw", **AL, gauss_tol=1e-4)
    with pytest.raises(BackendError, match="Gauss's law fails: the charge induced"):
        strict.label(_al100(), np.array([0, 0, 0.1]), ["dipole", "polarizability"])
    with pytest.raises(BackendError, match=r"forces sum to .* not zero"):
        get_backend("gpaw", net_force_tol=1e-3)._check_net_force(np.ones((2, 3)))


def test_slab_labelling_keeps_diagnostics_and_resumes(tmp_path, al_backend):
    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames
    from fieldforce.reference.labelling import label_frames

    frames = [Frame(_al100(), {"efield": np.array([0, 0, 0.2])})]
    out = tmp_path / "al.xyz"
    report = label_frames(frames, out, al_backend, ["energy"], progress=False)
    assert report.labelled == 1
    (done,) = read_frames(out)
    assert done.efield[2] != pytest.approx(0.2, abs=1e-3)  # the measured field is labelled
    assert done.atoms.info["field_applied"] < 0.2
    np.testing.assert_allclose(done.atoms.info["label_field"], [0, 0, 0.2])
    again = label_frames(frames, out, al_backend, ["energy"], progress=False)
    assert (again.labelled, again.reused) == (0, 1)


def test_slab_field_is_aimed_within_field_tol_and_reuse_respects_it(tmp_path):
    """The applied strength is corrected until the field felt is within ``field_tol`` of
    the one asked; the tolerance is not the level of theory (same fingerprint), so a label
    is reused exactly when it meets the current tolerance."""
    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames
    from fieldforce.reference.labelling import label_frames

    loose = get_backend("gpaw", **AL, field_tol=1.0)
    tight = get_backend("gpaw", **AL, field_tol=0.002)
    assert loose.settings_fingerprint() == tight.settings_fingerprint()
    frames = [Frame(_al100(), {"efield": np.array([0, 0, 0.3])})]
    out = tmp_path / "al.xyz"
    label_frames(frames, out, loose, ["energy"], progress=False)
    (rough,) = read_frames(out)
    miss = abs(rough.efield[2] - 0.3)
    assert rough.atoms.info["field_corrections"] == 0 and miss > 0.01  # estimate alone
    report = label_frames(frames, out, tight, ["energy"], progress=False)
    assert (report.labelled, report.reused) == (1, 0)  # the rough label is not accepted
    (aimed,) = read_frames(out)
    assert abs(aimed.efield[2] - 0.3) <= 0.002
    assert aimed.atoms.info["field_corrections"] >= 1
    assert aimed.atoms.info["field_applied"] != pytest.approx(rough.atoms.info["field_applied"])
    again = label_frames(frames, out, loose, ["energy"], progress=False)
    assert (again.labelled, again.reused) == (0, 1)  # the aimed one meets the loose tol


def test_bad_geometry_and_field_are_one_clear_error():
    backend = get_backend("gpaw")
    slab = Atoms("Na", positions=[[0, 0, 5]], cell=[3, 3, 10], pbc=[True, True, False])
    with pytest.raises(BackendError, match="field must be along the slab normal"):
        backend.label(slab, np.array([0.1, 0, 0]), ["energy"])
    thin = Atoms("Na", positions=[[0, 0, 1]], cell=[3, 3, 10], pbc=[True, True, False])
    with pytest.raises(BackendError, match="only 1.00 Å of vacuum"):
        backend.label(thin, np.array([0, 0, 0.1]), ["energy"])
    bulk = Atoms("Na", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
    with pytest.raises(BackendError, match="slabs .* or molecules"):
        backend.label(bulk, np.zeros(3), ["energy"])
    with pytest.raises(BackendError, match="not born_charges"):
        backend.label(H2, np.zeros(3), ["born_charges"])
