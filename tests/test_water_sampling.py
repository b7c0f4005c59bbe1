"""Thermal sampling of water geometries against exact harmonic results."""

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from fieldforce.datasets import water_sampling as ws

MONOMER = Atoms("OH2", positions=[[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]])
SPRINGS = {(0, 1): 50.0, (0, 2): 50.0, (1, 2): 8.0}  # eV/Å², Urey-Bradley-like network


def spring_forces(atoms: Atoms) -> np.ndarray:
    """Forces of harmonic springs at rest at MONOMER's bond lengths."""
    f = np.zeros((len(atoms), 3))
    for (i, j), k in SPRINGS.items():
        r0 = np.linalg.norm(MONOMER.positions[i] - MONOMER.positions[j])
        d = atoms.positions[i] - atoms.positions[j]
        r = np.linalg.norm(d)
        fij = -k * (r - r0) * d / r
        f[i] += fij
        f[j] -= fij
    return f


def spring_hessian() -> np.ndarray:
    """Exact Hessian of the spring network at rest: sum_k k u u^T blocks."""
    h = np.zeros((9, 9))
    for (i, j), k in SPRINGS.items():
        d = MONOMER.positions[i] - MONOMER.positions[j]
        block = k * np.outer(d, d) / (d @ d)
        for a, b, s in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
            h[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] += s * block
    return h


def test_normal_modes_match_exact_harmonic_frequencies():
    vals, modes = ws.normal_modes(MONOMER, spring_forces, step=1e-4)
    inv = np.repeat(1 / np.sqrt(MONOMER.get_masses()), 3)
    exact = np.linalg.eigvalsh(spring_hessian() * np.outer(inv, inv))
    np.testing.assert_allclose(np.sort(vals), np.sort(exact)[-3:], rtol=1e-6)
    # Modes carry no net momentum or angular momentum (rigid motions projected out).
    m = MONOMER.get_masses()
    for mode in modes:
        assert np.abs((m[:, None] * mode).sum(0)).max() < 1e-10
        r = MONOMER.positions - MONOMER.get_center_of_mass()
        assert np.abs((m[:, None] * np.cross(r, mode)).sum(0)).max() < 1e-10


def test_classical_sampling_gives_equipartition():
    vals, modes = ws.normal_modes(MONOMER, spring_forces, step=1e-4)
    rng = np.random.default_rng(1)
    h = spring_hessian()
    temperature = 450.0
    energies = []
    for _ in range(4000):
        dx = (ws.distort(MONOMER, vals, modes, temperature, rng).positions - MONOMER.positions)
        energies.append(0.5 * dx.ravel() @ h @ dx.ravel())
    expected = 3 * 0.5 * ws.KB_EV * temperature
    stderr = np.std(energies) / np.sqrt(len(energies))
    assert abs(np.mean(energies) - expected) < 4 * stderr


def test_cluster_distortion_is_rotation_covariant():
    vals, modes = ws.normal_modes(MONOMER, spring_forces, step=1e-4)
    rot = Rotation.from_euler("xyz", [30, -50, 120], degrees=True)
    rotated = MONOMER.copy()
    rotated.positions = rot.apply(MONOMER.positions - MONOMER.get_center_of_mass())
    ref = MONOMER.copy()
    ref.positions -= MONOMER.get_center_of_mass()
    a = ws.distort_cluster(ref, MONOMER, vals, modes, 500.0, np.random.default_rng(3))
    b = ws.distort_cluster(rotated, MONOMER, vals, modes, 500.0, np.random.default_rng(3))
    np.testing.assert_allclose(rot.apply(a.positions), b.positions, atol=1e-10)


@pytest.mark.parametrize("n", [2, 3])
def test_monte_carlo_clusters_stay_bound_and_rigid(n):
    samples = ws.sample_clusters(MONOMER, n, 5, 400.0, np.random.default_rng(0),
                                 burn_in=300, stride=50)
    assert len(samples) == 5
    ref = np.sort(MONOMER.get_all_distances().ravel())
    for atoms in samples:
        ox = atoms.positions[0::3]
        d = np.linalg.norm(ox[:, None] - ox[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        assert d.min(axis=1).max() < 4.0 and d.min() > 2.3
        for k in range(n):  # molecules move as rigid bodies
            mol = atoms[3 * k : 3 * k + 3]
            np.testing.assert_allclose(np.sort(mol.get_all_distances().ravel()), ref, atol=1e-9)
