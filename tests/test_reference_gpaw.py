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


def test_slab_dipole_responds_along_the_normal():
    slab = Atoms("Na2", positions=[[0, 0, 0], [1.5, 1.5, 2.0]], cell=[3.0, 3.0, 1.0],
                 pbc=[True, True, False])
    slab.center(vacuum=4.0, axis=2)
    backend = get_backend("gpaw", h=0.25, xc="LDA", kpts=(2, 2), min_vacuum=3.9)
    dip = [backend.label(slab, np.array([0, 0, f]), ["dipole"])["dipole"][2] for f in (0, 0.05)]
    assert dip[1] - dip[0] > 0.01  # a metal screens the field: a large induced dipole along +z


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
    with pytest.raises(BackendError, match="not polarizability"):
        backend.label(H2, np.zeros(3), ["polarizability"])
