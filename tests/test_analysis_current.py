"""IR spectra from the polarization current J = sum_i Z*_i v_i: the index convention,
fixed charges (J = dM/dt, the same spectrum as the dipole route), a harmonic band at a
known frequency, and bad input."""

import math

import numpy as np
import pytest

from fieldforce.analysis import ir_spectrum, polarization_current, polarization_current_spectrum
from fieldforce.errors import ConfigError, DataError

C_CM_PER_FS = 29979245800.0 * 1e-15  # speed of light, cm/fs


def angular(wavenumber_cm: float) -> float:
    """Wavenumber in cm^-1 -> angular frequency in rad/fs."""
    return 2.0 * math.pi * C_CM_PER_FS * wavenumber_cm


def vibrating_charges(dt=0.5, n=8000, seed=0):
    """Four fixed charges (neutral), each on a sum of two cosines (1100 and 2900 cm^-1)
    about its site: positions [T, 4, 3] Å, exact velocities [T, 4, 3] Å/fs, charges [4] e."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt
    sites = rng.uniform(-2, 2, (4, 3))
    amp1, amp2 = rng.normal(scale=0.05, size=(2, 4, 3))
    phase = rng.uniform(0, 2 * np.pi, (4, 3))
    w1, w2 = angular(1100.0), angular(2900.0)
    arg1 = w1 * t[:, None, None] + phase
    arg2 = w2 * t[:, None, None] - phase
    positions = sites + amp1 * np.cos(arg1) + amp2 * np.cos(arg2)
    velocities = -amp1 * w1 * np.sin(arg1) - amp2 * w2 * np.sin(arg2)
    charges = np.array([0.8, -0.5, 0.4, -0.7])
    return positions, velocities, charges


def test_index_convention_field_first():
    """Z*_{i,ab} = dP_a/dr_ib: an atom moving along x that polarizes along y (Z*_yx) gives
    a current along y, and Z*_xy (moving along y polarizes along x) does nothing here."""
    z = np.zeros((5, 2, 3, 3))
    z[:, 0, 1, 0] = 2.0  # Z*_{0,yx}
    z[:, 0, 0, 1] = 7.0  # Z*_{0,xy}: no y motion, no contribution
    z[:, 1] = -0.5 * np.eye(3)
    v = np.zeros((5, 2, 3))
    v[:, 0, 0] = 0.01  # atom 0 along x
    v[:, 1, 2] = 0.02  # atom 1 along z
    current = polarization_current(z, v)
    np.testing.assert_allclose(current, np.tile([0.0, 0.02, -0.01], (5, 1)), atol=1e-15)
    # [T, N, 9] row-major, as fieldforce md writes them, is the same
    np.testing.assert_array_equal(polarization_current(z.reshape(5, 2, 9), v), current)


def test_fixed_charges_current_is_dipole_derivative_and_same_spectrum():
    positions, velocities, q = vibrating_charges()
    n = positions.shape[0]
    born = np.broadcast_to(q[None, :, None, None] * np.eye(3), (n, 4, 3, 3))
    current = polarization_current(born, velocities)
    dipole = np.einsum("i,tia->ta", q, positions)
    np.testing.assert_allclose(current, np.einsum("i,tia->ta", q, velocities), atol=1e-14)
    # with the velocities of the central difference, J is exactly the derivative route's
    # dM/dt, so the two spectra are the same numbers
    central = (positions[2:] - positions[:-2]) / (2 * 0.5)
    from_current = polarization_current_spectrum(born[1:-1], central, 0.5)
    from_dipole = ir_spectrum(dipole, 0.5, method="derivative")
    np.testing.assert_allclose(from_current.frequencies_cm, from_dipole.frequencies_cm)
    np.testing.assert_allclose(from_current.intensity, from_dipole.intensity, atol=1e-12)
    assert from_current.method == "current" and "current" in from_current.metadata
    # with the exact velocities: the same bands; the central difference only loses
    # sinc²(omega dt) = 3% at 2900 cm^-1
    exact = polarization_current_spectrum(born, velocities, 0.5)
    assert exact.intensity.shape == from_dipole.intensity.shape
    assert np.abs(exact.intensity - from_dipole.intensity).max() < 0.05
    positions_exact = [p.position_cm for p in exact.peaks(min_height=0.1)]
    positions_dipole = [p.position_cm for p in from_dipole.peaks(min_height=0.1)]
    np.testing.assert_allclose(positions_exact, positions_dipole, atol=1.0)
    np.testing.assert_allclose(positions_exact, [1100.0, 2900.0],
                               atol=exact.metadata["resolution_cm"])


def test_harmonic_band_with_anisotropic_born_charges():
    """One atom on a spring along x at 1700 cm^-1, carrying a full (non-symmetric) Born
    tensor; its partner carries -Z* (sum rule) and stays put. J = Z*[:, 0] v_x oscillates
    at the spring frequency along Z*'s first column."""
    dt, n = 0.25, 16000
    t = np.arange(n) * dt
    w = angular(1700.0)
    velocities = np.zeros((n, 2, 3))
    velocities[:, 0, 0] = -0.03 * w * np.sin(w * t)
    tensor = np.array([[1.1, 0.3, -0.2], [0.6, 0.9, 0.1], [-0.4, 0.0, 1.3]])
    born = np.broadcast_to(np.stack([tensor, -tensor]), (n, 2, 3, 3))
    current = polarization_current(born, velocities)
    np.testing.assert_allclose(current, velocities[:, 0, 0, None] * tensor[:, 0], atol=1e-15)
    spectrum = polarization_current_spectrum(born, velocities, dt, broadening_cm=10.0)
    (peak,) = spectrum.peaks(min_height=0.1)
    assert abs(peak.position_cm - 1700.0) < spectrum.metadata["resolution_cm"] / 4
    assert spectrum.n_frames == n and spectrum.broadening_cm == 10.0


def test_bad_input_is_one_clear_error():
    z, v = np.zeros((10, 2, 3, 3)), np.zeros((10, 2, 3))
    with pytest.raises(DataError, match=r"born_charges: expected shape \[T, N, 3, 3\]"):
        polarization_current(np.zeros((10, 2, 3)), v)
    with pytest.raises(DataError, match=r"velocities: expected shape \[T, N, 3\]"):
        polarization_current(z, np.zeros((10, 2)))
    with pytest.raises(DataError, match="same frames and atoms"):
        polarization_current(z, np.zeros((9, 2, 3)))
    bad = v.copy()
    bad[4, 1, 2] = np.nan
    with pytest.raises(DataError, match="velocities: non-finite value.*frame 4"):
        polarization_current(z, bad)
    with pytest.raises(ConfigError, match="method='current'"):
        polarization_current_spectrum(z, v, 0.5, method="dipole")
    with pytest.raises(DataError, match="does not fluctuate"):
        polarization_current_spectrum(z, v, 0.5)
