"""IR spectra from dipole time series against analytic line shapes."""

import json
import math

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.ndimage import gaussian_filter1d

from fieldforce.analysis import IRSpectrum, dipole_autocorrelation, ir_spectrum
from fieldforce.errors import ConfigError, DataError

C_CM_PER_FS = 29979245800.0 * 1e-15  # speed of light, cm/fs


def angular(wavenumber_cm: float) -> float:
    """Wavenumber in cm^-1 -> angular frequency in rad/fs."""
    return 2.0 * math.pi * C_CM_PER_FS * wavenumber_cm


def two_band_dipole(dt: float = 0.5, n: int = 20_000, amps=(1.0, 0.3), seed: int = 0):
    """Cosines at 1640 cm^-1 (along x) and 3400 cm^-1 (along z), 10 ps, small noise."""
    t = np.arange(n) * dt
    mu = np.zeros((n, 3))
    mu[:, 0] = amps[0] * np.cos(angular(1640.0) * t)
    mu[:, 2] = amps[1] * np.cos(angular(3400.0) * t + 0.3)
    mu += 0.01 * np.random.default_rng(seed).standard_normal(mu.shape)
    return mu


def by_position(spectrum: IRSpectrum, **kw):
    """The two highest peaks, sorted by position."""
    top = sorted(spectrum.peaks(**kw), key=lambda p: -p.height)[:2]
    return sorted(top, key=lambda p: p.position_cm)


@pytest.mark.parametrize("method", ["derivative", "dipole"])
def test_two_cosines_positions_and_omega_squared_intensities(method):
    amps = (1.0, 0.3)
    spectrum = ir_spectrum(two_band_dipole(amps=amps), 0.5, method=method)
    low, high = by_position(spectrum)
    resolution = spectrum.metadata["resolution_cm"]
    assert resolution < 10.0
    assert abs(low.position_cm - 1640.0) < resolution
    assert abs(high.position_cm - 3400.0) < resolution
    # Absorption ∝ omega² |amplitude|²: 3400 cm^-1 at amplitude 0.3 is 0.387 of 1640 at 1.0
    # (a spectrum without the omega² weight would give 0.09).
    expected = (3400.0 * amps[1]) ** 2 / (1640.0 * amps[0]) ** 2
    assert high.height / low.height == pytest.approx(expected, rel=0.10)
    assert spectrum.n_frames == 20_000 and spectrum.method == method
    assert spectrum.intensity.max() == pytest.approx(1.0)


def test_derivative_and_omega_squared_dipole_spectra_agree_for_smooth_signal():
    dt, width_fs = 0.5, 2.5
    noise = np.random.default_rng(3).standard_normal((100_000, 3))
    # Gaussian-filtered white noise: dipole power ∝ exp(-(omega s)^2), s = 2.5 fs, so the
    # omega²-weighted band peaks at omega = 1/s (about 2123 cm^-1).
    mu = gaussian_filter1d(noise, width_fs / dt, axis=0)
    kw = dict(max_correlation_fs=500.0)
    deriv = ir_spectrum(mu, dt, method="derivative", **kw)
    dip = ir_spectrum(mu, dt, method="dipole", **kw)
    band = deriv.frequencies_cm < 6000.0
    assert np.allclose(deriv.frequencies_cm, dip.frequencies_cm)
    # Central differences respond with sinc(omega dt), a few % below the exact omega here.
    assert np.max(np.abs(deriv.intensity[band] - dip.intensity[band])) < 0.03
    assert np.corrcoef(deriv.intensity[band], dip.intensity[band])[0, 1] > 0.995
    peak_cm = deriv.frequencies_cm[np.argmax(deriv.intensity)]
    assert peak_cm == pytest.approx(1.0 / width_fs / (2 * math.pi * C_CM_PER_FS), rel=0.1)
    # A supplied polarization current gives exactly the derivative route.
    current = (mu[2:] - mu[:-2]) / (2 * dt)
    from_current = ir_spectrum(current, dt, method="current", **kw)
    np.testing.assert_allclose(from_current.intensity, deriv.intensity, atol=1e-12)


def langevin_oscillator(nu0_cm, fwhm_cm, dt, n, seed):
    """Position of x'' = -w0² x - g x' + noise, sampled exactly (2D Ornstein-Uhlenbeck)."""
    w0, g = angular(nu0_cm), angular(fwhm_cm)
    prop = expm(np.array([[0.0, 1.0], [-(w0**2), -g]]) * dt)
    stationary = np.diag([1.0 / w0**2, 1.0])  # equipartition, kT/m = 1
    chol = np.linalg.cholesky(stationary - prop @ stationary @ prop.T)
    kicks = np.random.default_rng(seed).standard_normal((n, 2)) @ chol.T
    (m00, m01), (m10, m11) = prop
    x = np.empty(n)
    s0 = s1 = 0.0
    for k in range(n):
        s0, s1 = m00 * s0 + m01 * s1 + kicks[k, 0], m10 * s0 + m11 * s1 + kicks[k, 1]
        x[k] = s0
    return x


def test_langevin_oscillator_linewidth_matches_friction():
    # The velocity spectrum of a Langevin oscillator, w² / ((w0² - w²)² + g² w²), has
    # half-maximum points where |w0² - w²| = g w, i.e. an FWHM of exactly g.
    nu0, fwhm = 1000.0, 30.0
    mu = np.zeros((400_000, 3))
    mu[:, 1] = langevin_oscillator(nu0, fwhm, dt=1.0, n=mu.shape[0], seed=0)
    spectrum = ir_spectrum(mu, 1.0, max_correlation_fs=3000.0, window="hann")
    (peak,) = spectrum.peaks(min_height=0.3)
    assert peak.position_cm == pytest.approx(nu0, abs=5.0)
    assert peak.fwhm_cm == pytest.approx(fwhm, rel=0.20)


@pytest.mark.parametrize("normalization", ["unbiased", "biased"])
def test_autocorrelation_matches_direct_sum(normalization):
    x = np.random.default_rng(7).standard_normal((50, 3)) + np.array([1.0, -2.0, 0.5])
    corr = dipole_autocorrelation(x, 20, normalization=normalization)
    centred = x - x.mean(axis=0)
    n = len(x)
    direct = [
        sum(centred[t] @ centred[t + k] for t in range(n - k))
        / ((n - k) if normalization == "unbiased" else n)
        for k in range(20)
    ]
    np.testing.assert_allclose(corr, direct, rtol=1e-10, atol=1e-12)
    assert corr[0] == pytest.approx(np.var(x, axis=0).sum(), rel=1e-12)


def test_broadening_and_quantum_correction():
    mu = two_band_dipole()
    bare = by_position(ir_spectrum(mu, 0.5))
    broad = by_position(ir_spectrum(mu, 0.5, broadening_cm=60.0))
    for b, p in zip(bare, broad, strict=True):
        assert p.fwhm_cm == pytest.approx(math.hypot(60.0, b.fwhm_cm), rel=0.1)
    hot = by_position(ir_spectrum(mu, 0.5, temperature=300.0))
    # Q = x / (1 - e^-x), x = h c nu / (k T); second radiation constant 1.438777 cm K.
    q = [x / -math.expm1(-x) for x in (1.438777 * nu / 300.0 for nu in (1640.0, 3400.0))]
    boost = (hot[1].height / hot[0].height) / (bare[1].height / bare[0].height)
    assert boost == pytest.approx(q[1] / q[0], rel=0.02)


@pytest.mark.parametrize(
    ("data", "dt", "kw", "error", "match"),
    [
        (np.zeros((5, 3)), 0.5, {}, DataError, "at least 8 frames"),
        (np.full((100, 3), np.nan), 0.5, {}, DataError, "frame 0"),
        (np.zeros((100,)), 0.5, {}, DataError, "shape"),
        (np.zeros((100, 2)), 0.5, {}, DataError, "shape"),
        (np.ones((100, 3)), 0.0, {}, DataError, "timestep_fs"),
        (np.ones((100, 3)), -1.0, {}, DataError, "timestep_fs"),
        (np.ones((100, 3)), 0.5, {"max_correlation_fs": 60.0}, DataError, "longer than"),
        (np.ones((100, 3)), 0.5, {}, DataError, "does not fluctuate"),
        (np.ones((100, 3)), 0.5, {"method": "fourier"}, ConfigError, "method"),
        (np.ones((100, 3)), 0.5, {"window": "boxcar"}, ConfigError, "window"),
    ],
)
def test_bad_input_raises_one_sentence(data, dt, kw, error, match):
    with pytest.raises(error, match=match):
        ir_spectrum(data, dt, **kw)


def test_nan_in_later_frame_is_named():
    mu = two_band_dipole(n=200)
    mu[123, 1] = np.nan
    with pytest.raises(DataError, match="frame 123"):
        ir_spectrum(mu, 0.5)


def test_plot_table_and_json(tmp_path):
    spectrum = ir_spectrum(two_band_dipole(), 0.5)
    target = tmp_path / "ir.png"
    spectrum.plot(target, title="two bands")
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["ir.png"]
    table = spectrum.table()
    assert "1640" in table and "3400" in table and table.count("\n") == 3
    payload = json.loads(json.dumps(spectrum.to_dict()))
    assert payload["method"] == "derivative" and len(payload["peaks"]) == 2
    assert len(payload["intensity"]) == len(spectrum.frequencies_cm)
