"""Thermal geometries of water monomers and small clusters, for DFT labelling.

Two ingredients, both classical and both at a temperature T (300-600 K):

* **intramolecular distortions** from classical harmonic normal-mode sampling:
  every vibrational mode k of the monomer (mass-weighted Hessian eigenpair
  lambda_k = omega_k², e_k) gets an amplitude Q_k ~ N(0, k_B T / lambda_k), and
  the Cartesian displacement is M^{-1/2} e_k Q_k. The Hessian comes from the
  reference method itself (finite differences of its forces), so the sampled
  distortions match the labels' potential energy surface to harmonic order;
* **intermolecular configurations** of (H2O)_n from Metropolis Monte Carlo of
  rigid TIP4P molecules (ASE's ``TIP4P`` calculator) with a soft confinement
  that keeps the cluster bound (every molecule within ``bond_radius`` of
  another through O-O distances), sampled every ``stride`` moves.

Each structure is finally rotated at random about its centre of mass, which
sits at the origin; labels of a neutral molecule do not depend on that origin,
and the random orientation exercises every Cartesian component of vector and
tensor labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.tip4p import TIP4P
from scipy.spatial.transform import Rotation

from fieldforce.units import AVOGADRO, ELEMENTARY_CHARGE_C

#: Boltzmann constant in eV/K (CODATA 2018, exact).
KB_EV = 8.617333262e-5
# Mass-weighted Hessian eigenvalues are in eV/(Å² amu); omega in rad/s is
# sqrt(lambda · eV_J / (1e-20 · amu_kg)); wavenumber = omega / (2 pi c).
_AMU_KG = 1e-3 / AVOGADRO


def wavenumbers(eigenvalues: np.ndarray) -> np.ndarray:
    """Harmonic wavenumbers (cm^-1) from mass-weighted eigenvalues (eV/(Å² amu))."""
    omega = np.sqrt(np.abs(eigenvalues) * ELEMENTARY_CHARGE_C / (1e-20 * _AMU_KG))
    return np.sign(eigenvalues) * omega / (2 * np.pi * 2.99792458e10)


def normal_modes(
    atoms: Atoms, forces_fn: Callable[[Atoms], np.ndarray], step: float = 0.005
) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational normal modes from central differences of forces.

    Parameters
    ----------
    atoms
        a geometry at (or very near) a minimum.
    forces_fn
        atoms -> forces [N,3] in eV/Å.
    step
        Cartesian displacement in Å.

    Returns
    -------
    eigenvalues
        [3N-6] mass-weighted Hessian eigenvalues, eV/(Å² amu), ascending.
    modes
        [3N-6, N, 3] Cartesian displacement patterns M^{-1/2} e_k (Å / sqrt(amu)).
    """
    n = len(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    for a in range(n):
        for x in range(3):
            columns = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.positions[a, x] += sign * step
                columns.append(-forces_fn(displaced).reshape(-1))
            hessian[:, 3 * a + x] = (columns[0] - columns[1]) / (2 * step)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    mw = hessian * np.outer(inv_sqrt_m, inv_sqrt_m)
    # Project out rigid translations and rotations so that sampling never
    # excites a zero mode with an enormous amplitude.
    rigid = _rigid_body_basis(atoms)
    projector = np.eye(3 * n) - rigid @ rigid.T
    vals, vecs = np.linalg.eigh(projector @ mw @ projector)
    keep = np.argsort(vals)[-(3 * n - 6) :]
    modes = (vecs[:, keep] * inv_sqrt_m[:, None]).T.reshape(-1, n, 3)
    return vals[keep], modes


def _rigid_body_basis(atoms: Atoms) -> np.ndarray:
    """Orthonormal mass-weighted basis [3N, 6] of rigid translations and rotations."""
    m = atoms.get_masses()
    r = atoms.positions - atoms.get_center_of_mass()
    sqm = np.sqrt(m)[:, None]
    vectors = []
    for x in range(3):
        t = np.zeros_like(r)
        t[:, x] = 1.0
        vectors.append((t * sqm).reshape(-1))
        axis = np.zeros(3)
        axis[x] = 1.0
        vectors.append((np.cross(axis, r) * sqm).reshape(-1))
    q, _ = np.linalg.qr(np.array(vectors).T)
    return q


def distort(
    atoms: Atoms,
    eigenvalues: np.ndarray,
    modes: np.ndarray,
    temperature: float,
    rng: np.random.Generator,
) -> Atoms:
    """Classical harmonic thermal distortion of one molecule (modes in its own frame)."""
    amplitudes = rng.normal(size=len(eigenvalues)) * np.sqrt(KB_EV * temperature / eigenvalues)
    out = atoms.copy()
    out.positions += np.einsum("k,kij->ij", amplitudes, modes)
    return out


def _kabsch(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation matrix R minimising |reference_centered @ R.T - target_centered|."""
    p = reference - reference.mean(0)
    q = target - target.mean(0)
    u, _, vt = np.linalg.svd(p.T @ q)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def sample_clusters(
    monomer: Atoms,
    n_molecules: int,
    n_samples: int,
    temperature: float,
    rng: np.random.Generator,
    *,
    burn_in: int = 3000,
    stride: int = 200,
    bond_radius: float = 4.0,
    max_step: float = 0.2,
    max_angle: float = 15.0,
) -> list[Atoms]:
    """Rigid-molecule Metropolis Monte Carlo of (H2O)_n with TIP4P at ``temperature``.

    The cluster is kept bound by rejecting any move after which some molecule
    has no O-O neighbour within ``bond_radius`` Å (for n = 2: the O-O distance
    stays below it). Returns ``n_samples`` configurations, ``stride`` moves apart.
    """
    molecules = []
    for k in range(n_molecules):
        m = monomer.copy()
        m.positions -= m.get_center_of_mass()
        m.positions = Rotation.random(random_state=rng.integers(2**31)).apply(m.positions)
        m.positions += np.array([2.9 * k, 0.0, 0.0])
        molecules.append(m)
    cluster = _join(molecules)
    cluster.calc = TIP4P(rc=50.0)
    energy = cluster.get_potential_energy()
    kt = KB_EV * temperature
    samples: list[Atoms] = []
    moves = 0
    while len(samples) < n_samples:
        trial = cluster.copy()
        k = int(rng.integers(n_molecules))
        block = slice(3 * k, 3 * k + 3)
        com = trial.positions[block].mean(0)
        rot = Rotation.from_rotvec(np.deg2rad(max_angle) * rng.uniform(-1, 1, 3))
        trial.positions[block] = rot.apply(trial.positions[block] - com) + com
        trial.positions[block] += max_step * rng.uniform(-1, 1, 3)
        moves += 1
        if _bound(trial.positions[0::3], bond_radius):
            trial.calc = TIP4P(rc=50.0)
            new = trial.get_potential_energy()
            if new <= energy or rng.random() < np.exp(-(new - energy) / kt):
                cluster, energy = trial, new
        if moves > burn_in and moves % stride == 0:
            samples.append(Atoms(cluster.get_chemical_symbols(), cluster.positions.copy()))
    return samples


def _join(molecules: list[Atoms]) -> Atoms:
    cluster = Atoms()
    for m in molecules:
        cluster += m
    cluster.cell = np.eye(3) * 60.0
    cluster.pbc = False
    return cluster


def _bound(oxygens: np.ndarray, radius: float) -> bool:
    d = np.linalg.norm(oxygens[:, None] - oxygens[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return bool(np.all(d.min(axis=1) < radius)) and bool(np.all(d > 2.3))


def distort_cluster(
    cluster: Atoms,
    monomer: Atoms,
    eigenvalues: np.ndarray,
    modes: np.ndarray,
    temperature: float,
    rng: np.random.Generator,
) -> Atoms:
    """Add an intramolecular thermal distortion to every molecule of a rigid cluster.

    The monomer's modes are rotated into each molecule's orientation (Kabsch
    fit of the reference monomer onto the molecule) before sampling.
    """
    out = cluster.copy()
    ref = monomer.positions - monomer.get_center_of_mass()
    for k in range(len(cluster) // 3):
        block = slice(3 * k, 3 * k + 3)
        rot = _kabsch(ref, cluster.positions[block])
        rotated_modes = np.einsum("kia,ba->kib", modes, rot)
        amplitudes = rng.normal(size=len(eigenvalues)) * np.sqrt(
            KB_EV * temperature / eigenvalues
        )
        out.positions[block] += np.einsum("k,kij->ij", amplitudes, rotated_modes)
    return out


def random_orientation(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    """Rotate about the centre of mass at random and put the centre at the origin."""
    out = Atoms(atoms.get_chemical_symbols(), atoms.positions.copy())
    out.positions -= out.get_center_of_mass()
    out.positions = Rotation.random(random_state=rng.integers(2**31)).apply(out.positions)
    return out
