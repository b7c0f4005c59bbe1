"""Infrared absorption spectra from dipole time series.

The classical IR line shape is the Fourier transform of the autocorrelation of
the dipole *derivative*,

    I(omega) ∝ ∫ <mu'(0)·mu'(t)> exp(-i omega t) dt  =  omega² ∫ <mu(0)·mu(t)> exp(-i omega t) dt,

so three routes are offered (``method``):

- ``"derivative"`` — central finite difference of the dipole, then its
  autocorrelation (the default; no omega² factor amplifies high-frequency noise
  of the dipole spectrum near omega = 0);
- ``"dipole"`` — omega² times the spectrum of the dipole autocorrelation;
- ``"current"`` — the input already is mu' (a polarization current, e·Å/fs), e.g.
  J(t) = sum_i Z*_i v_i from Born charges and velocities
  (:func:`polarization_current`, :func:`polarization_current_spectrum`): the exact
  derivative at each frame (no finite difference) and defined in periodic cells,
  where the polarization itself is multivalued.

Autocorrelations use FFTs (Wiener–Khinchin) with zero padding to twice the
length, so they equal the direct lag sums exactly (no circular wrap-around).
Frequencies are wavenumbers: nu~ [cm^-1] = f [1/fs] · 1e15 / c [cm/s].
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import fft as sfft
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks, peak_widths

from fieldforce.data.atomic import save_figure
from fieldforce.errors import ConfigError, DataError
from fieldforce.units import HBAR_JS, SPEED_OF_LIGHT_M_S

#: Speed of light in cm/s (exact, SI definition), for f [Hz] -> wavenumber [cm^-1].
SPEED_OF_LIGHT_CM_S = SPEED_OF_LIGHT_M_S * 100.0
#: Boltzmann constant in J/K (exact since the 2019 SI); units.py does not carry it.
BOLTZMANN_J_K = 1.380649e-23
#: Fewest frames for which a correlation function means anything at all.
MIN_FRAMES = 8

_METHODS = ("derivative", "dipole", "current")
_WINDOWS = ("hann", "gaussian", "none")


@dataclass(frozen=True)
class Peak:
    """One absorption band: position and FWHM in cm^-1, height in units of the max."""

    position_cm: float
    height: float
    fwhm_cm: float


@dataclass
class IRSpectrum:
    """An IR absorption spectrum on a uniform wavenumber grid.

    ``frequencies_cm`` [K] (cm^-1, from 0 to the Nyquist wavenumber) and
    ``intensity`` [K] (arbitrary units, normalized so the maximum is 1).
    The remaining fields record how it was computed.
    """

    frequencies_cm: np.ndarray
    intensity: np.ndarray
    timestep_fs: float
    method: str
    window: str
    n_frames: int
    max_correlation_fs: float
    broadening_cm: float | None = None
    temperature: float | None = None
    quantum_correction: str = "none"
    metadata: dict[str, Any] = field(default_factory=dict)

    def peaks(self, min_height: float = 0.05, min_separation_cm: float = 50.0) -> list[Peak]:
        """Bands above ``min_height`` (fraction of the max), sorted by position.

        Positions are refined by a parabola through the three highest grid
        points (sub-bin accuracy); FWHM is read at half of each peak's height
        above its base (``scipy.signal.peak_widths``).
        """
        dnu = float(self.frequencies_cm[1] - self.frequencies_cm[0])
        distance = max(1, int(round(min_separation_cm / dnu)))
        idx, props = find_peaks(self.intensity, height=min_height, distance=distance)
        if idx.size == 0:
            return []
        widths = peak_widths(self.intensity, idx, rel_height=0.5)[0] * dnu
        found = []
        for i, width in zip(idx, widths, strict=True):
            shift = 0.0
            if 0 < i < self.intensity.size - 1:
                y0, y1, y2 = self.intensity[i - 1 : i + 2]
                curvature = y0 - 2.0 * y1 + y2
                if curvature < 0:
                    shift = 0.5 * (y0 - y2) / curvature
            position = float(self.frequencies_cm[i] + shift * dnu)
            found.append(Peak(position, float(self.intensity[i]), float(width)))
        return found

    def table(self, **peak_options: float) -> str:
        """Markdown table of :meth:`peaks` (options passed through)."""
        rows = ["| # | position / cm^-1 | height | FWHM / cm^-1 |", "|---|---|---|---|"]
        for n, p in enumerate(self.peaks(**peak_options), start=1):
            rows.append(f"| {n} | {p.position_cm:.1f} | {p.height:.3f} | {p.fwhm_cm:.1f} |")
        return "\n".join(rows)

    def plot(
        self,
        path: str | os.PathLike[str],
        xlim: tuple[float, float] = (0.0, 4500.0),
        title: str | None = None,
    ) -> None:
        """Write a PNG of the spectrum to ``path`` atomically.

        The figure goes to a temporary file in the target directory first and is
        then renamed, so a reader never sees a half-written image.
        """
        # Figure + Agg canvas directly: never switches the global pyplot backend.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.0, 4.0))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(self.frequencies_cm, self.intensity, lw=1.0)
        ax.set_xlim(*xlim)
        ax.set_xlabel("wavenumber / cm$^{-1}$")
        ax.set_ylabel("intensity (normalized)")
        ax.set_title(title if title is not None else f"IR spectrum ({self.method})")
        fig.tight_layout()

        save_figure(fig, path, dpi=150)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: grid, intensity, settings and peaks."""
        return {
            "frequencies_cm": self.frequencies_cm.tolist(),
            "intensity": self.intensity.tolist(),
            "timestep_fs": self.timestep_fs,
            "method": self.method,
            "window": self.window,
            "n_frames": self.n_frames,
            "max_correlation_fs": self.max_correlation_fs,
            "broadening_cm": self.broadening_cm,
            "temperature": self.temperature,
            "quantum_correction": self.quantum_correction,
            "peaks": [vars(p) for p in self.peaks()],
            "metadata": dict(self.metadata),
        }


def _as_series(series: Any, name: str) -> np.ndarray:
    """Validate a [T,3] time series; return it as a float64 array."""
    try:
        arr = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected a numeric [T, 3] array ({exc}).") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DataError(f"{name}: expected shape [T, 3], got {list(arr.shape)}.")
    if arr.shape[0] < MIN_FRAMES:
        raise DataError(f"{name}: need at least {MIN_FRAMES} frames, got {arr.shape[0]}.")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: non-finite value (NaN or inf) in frame {bad[0]}.")
    return arr


def dipole_autocorrelation(
    series: Any,
    max_lag: int,
    *,
    normalization: Literal["unbiased", "biased"] = "unbiased",
    subtract_mean: bool = True,
) -> np.ndarray:
    """Autocorrelation C(k) = <x(t)·x(t+k)> of a vector time series, by FFT.

    ``series`` [T,3] (any unit u), ``max_lag`` = number of lags returned;
    result [max_lag] in u², lags 0 … max_lag-1 frames. The three Cartesian
    components are summed (the dot product), so with ``subtract_mean`` C(0) is
    the total variance ``np.var(series, axis=0).sum()``.

    ``"unbiased"`` divides lag k by the T-k pairs that contribute (an average
    per pair; noisier at long lags), ``"biased"`` divides every lag by T (a
    positive-definite estimate that tapers like a triangle window).
    """
    x = _as_series(series, "series")
    n = x.shape[0]
    if not 1 <= max_lag <= n:
        raise DataError(f"max_lag must be between 1 and the {n} frames, got {max_lag}.")
    if normalization not in ("unbiased", "biased"):
        raise ConfigError(f"normalization must be 'unbiased' or 'biased', got {normalization!r}.")
    if subtract_mean:
        x = x - x.mean(axis=0)
    # Zero padding to >= 2T-1 makes the circular correlation equal the linear one.
    n_fft = sfft.next_fast_len(2 * n - 1, real=True)
    spectrum = sfft.rfft(x, n=n_fft, axis=0)
    power = (spectrum * spectrum.conj()).real.sum(axis=1)
    corr = sfft.irfft(power, n=n_fft)[:max_lag]
    counts = (n - np.arange(max_lag)) if normalization == "unbiased" else np.full(max_lag, n)
    return corr / counts


def _window(kind: str, n_lags: int) -> np.ndarray:
    """One-sided window over lags 0 … n_lags-1, equal to 1 at lag 0."""
    lags = np.arange(n_lags, dtype=np.float64)
    if kind == "hann":
        # Right half of a Hann window that would reach zero one step past the last lag.
        return 0.5 * (1.0 + np.cos(np.pi * lags / n_lags))
    if kind == "gaussian":
        # sigma = a third of the correlation length: ~1% is left at the cut, so
        # truncation adds no visible ringing.
        return np.exp(-0.5 * (lags / (n_lags / 3.0)) ** 2)
    return np.ones(n_lags)


def quantum_correction_factor(wavenumber_cm: np.ndarray, temperature: float) -> np.ndarray:
    """Harmonic quantum correction Q = x / (1 - exp(-x)), x = hbar·omega / (k_B·T).

    ``wavenumber_cm`` [K] in cm^-1, ``temperature`` in K; Q -> 1 as omega -> 0.
    """
    hbar_omega = HBAR_JS * 2.0 * math.pi * SPEED_OF_LIGHT_CM_S * np.asarray(wavenumber_cm)
    x = hbar_omega / (BOLTZMANN_J_K * temperature)
    safe = np.where(x == 0.0, 1.0, x)
    return np.where(x == 0.0, 1.0, safe / -np.expm1(-safe))


def ir_spectrum(
    dipoles: Any,
    timestep_fs: float,
    *,
    method: Literal["derivative", "dipole", "current"] = "derivative",
    max_correlation_fs: float | None = None,
    window: Literal["hann", "gaussian", "none"] = "hann",
    broadening_cm: float | None = None,
    temperature: float | None = None,
    quantum_correction: Literal["harmonic", "none"] = "harmonic",
) -> IRSpectrum:
    """IR absorption line shape from a dipole (or dipole-derivative) time series.

    ``dipoles`` [T,3]: the dipole in e·Å sampled every ``timestep_fs`` fs, or,
    for ``method="current"``, its time derivative (polarization current) in
    e·Å/fs. The mean is removed, the unbiased FFT autocorrelation is taken up to
    ``max_correlation_fs`` (default: half the series), multiplied by ``window``
    and cosine-transformed (zero padded 4x for a smooth grid). ``"derivative"``
    uses a central difference, whose response sin(omega·dt)/dt lowers the
    intensity by a factor sinc²(omega·dt): 3% at 3400 cm^-1 for dt = 0.5 fs.

    ``broadening_cm``: FWHM in cm^-1 of a Gaussian convolved with the spectrum.

    ``temperature`` (K) with ``quantum_correction="harmonic"`` multiplies the
    classical line shape by Q(omega) = beta·hbar·omega / (1 - exp(-beta·hbar·omega)),
    turning omega²·C_classical into omega²·C_quantum of a harmonic system. Note
    that in the same harmonic picture the absorption coefficient
    alpha·n ∝ omega (1 - e^{-beta hbar omega}) C_quantum equals beta·hbar·omega²·C_classical,
    i.e. the *uncorrected* line shape; use the correction to compare with
    quantum correlation spectra, leave ``temperature=None`` for absorbance.

    Returns an :class:`IRSpectrum` with intensity normalized to max 1.
    """
    if method not in _METHODS:
        raise ConfigError(f"method must be one of {_METHODS}, got {method!r}.")
    if window not in _WINDOWS:
        raise ConfigError(f"window must be one of {_WINDOWS}, got {window!r}.")
    if quantum_correction not in ("harmonic", "none"):
        raise ConfigError(
            f"quantum_correction must be 'harmonic' or 'none', got {quantum_correction!r}."
        )
    name = "current" if method == "current" else "dipoles"
    data = _as_series(dipoles, name)
    dt = float(timestep_fs)
    if not (math.isfinite(dt) and dt > 0.0):
        raise DataError(f"timestep_fs must be a positive number of fs, got {timestep_fs}.")
    if broadening_cm is not None and not broadening_cm > 0.0:
        raise ConfigError(f"broadening_cm must be a positive FWHM in cm^-1, got {broadening_cm}.")
    if temperature is not None and not temperature > 0.0:
        raise ConfigError(f"temperature must be positive (K), got {temperature}.")

    if method == "derivative":
        # Central difference: second-order accurate and, unlike a forward
        # difference, free of a half-step phase shift. Drops the two end frames.
        series = (data[2:] - data[:-2]) / (2.0 * dt)
    else:
        series = data
    n = series.shape[0]
    duration = (n - 1) * dt
    if max_correlation_fs is None:
        n_lags = n // 2
    else:
        if not max_correlation_fs > 0.0:
            raise DataError(f"max_correlation_fs must be positive, got {max_correlation_fs}.")
        if max_correlation_fs > duration * (1.0 + 1e-12):
            raise DataError(
                f"max_correlation_fs={max_correlation_fs} is longer than the {duration:g} fs "
                f"the {method} series spans."
            )
        n_lags = int(math.floor(max_correlation_fs / dt + 1e-9)) + 1
    n_lags = max(n_lags, 2)

    corr = dipole_autocorrelation(series, n_lags) * _window(window, n_lags)
    # The correlation is real and even in time, so its spectrum is the cosine
    # transform: rfft of the mirrored sequence, real part.
    n_fft = sfft.next_fast_len(4 * n_lags, real=True)
    mirrored = np.zeros(n_fft)
    mirrored[:n_lags] = corr
    mirrored[n_fft - n_lags + 1 :] = corr[1:][::-1]
    line = sfft.rfft(mirrored).real * dt
    freq_per_fs = sfft.rfftfreq(n_fft, d=dt)
    wavenumber = freq_per_fs * 1e15 / SPEED_OF_LIGHT_CM_S
    if method == "dipole":
        line = line * (2.0 * np.pi * freq_per_fs) ** 2

    if broadening_cm is not None:
        sigma_bins = broadening_cm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / wavenumber[1]
        # The spectrum is even about 0 and about Nyquist, so mirroring is exact there.
        line = gaussian_filter1d(line, sigma_bins, mode="mirror")
    applied = "none"
    if temperature is not None and quantum_correction == "harmonic":
        line = line * quantum_correction_factor(wavenumber, temperature)
        applied = "harmonic"

    peak = line.max()
    if not (np.isfinite(peak) and peak > 0.0):
        raise DataError(f"{name}: the series does not fluctuate, so it has no spectrum.")
    return IRSpectrum(
        frequencies_cm=wavenumber,
        intensity=line / peak,
        timestep_fs=dt,
        method=method,
        window=window,
        n_frames=int(data.shape[0]),
        max_correlation_fs=(n_lags - 1) * dt,
        broadening_cm=broadening_cm,
        temperature=temperature,
        quantum_correction=applied,
        metadata={"resolution_cm": 1e15 / (n_lags * dt) / SPEED_OF_LIGHT_CM_S},
    )


def polarization_current(born_charges: Any, velocities: Any) -> np.ndarray:
    """The polarization current J(t) = sum_i Z*_i v_i, [T, 3] in e·Å/fs.

    ``born_charges`` [T, N, 3, 3] e (or [T, N, 9] row-major, as ``fieldforce md`` writes
    them), Z*_{i,ab} = V dP_a/dr_ib; ``velocities`` [T, N, 3] Å/fs. The field index comes
    first: J_a = sum_i sum_b Z*_{i,ab} v_ib = d(V P_a)/dt. For fixed charges (Z*_i = q_i I)
    J is the time derivative of the dipole sum_i q_i r_i.
    """
    try:
        z = np.asarray(born_charges, dtype=np.float64)
        v = np.asarray(velocities, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"Born charges and velocities must be numeric arrays ({exc}).") from None
    if z.ndim == 3 and z.shape[-1] == 9:
        z = z.reshape(*z.shape[:2], 3, 3)
    if z.ndim != 4 or z.shape[2:] != (3, 3):
        raise DataError(f"born_charges: expected shape [T, N, 3, 3] (or [T, N, 9]), got "
                        f"{list(z.shape)}.")
    if v.ndim != 3 or v.shape[2] != 3:
        raise DataError(f"velocities: expected shape [T, N, 3], got {list(v.shape)}.")
    if z.shape[:2] != v.shape[:2]:
        raise DataError(f"born_charges are [T, N] = {list(z.shape[:2])} but velocities "
                        f"{list(v.shape[:2])}: they must cover the same frames and atoms.")
    for name, arr in (("born_charges", z), ("velocities", v)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
        if bad.size:
            raise DataError(f"{name}: non-finite value (NaN or inf) in frame {bad[0]}.")
    return np.einsum("tiab,tib->ta", z, v)


def polarization_current_spectrum(
    born_charges: Any, velocities: Any, timestep_fs: float, **options: Any
) -> IRSpectrum:
    """IR spectrum from the polarization-current autocorrelation <J(0)·J(t)>.

    ``born_charges`` [T, N, 3, 3] e, ``velocities`` [T, N, 3] Å/fs, one frame every
    ``timestep_fs`` fs; J by :func:`polarization_current`. The line shape is that of
    :func:`ir_spectrum` with ``method="current"`` (same windowing, broadening, quantum
    correction, peaks, table and plot); ``options`` are its keyword arguments.
    """
    if "method" in options:
        raise ConfigError("polarization_current_spectrum always uses method='current'.")
    spectrum = ir_spectrum(polarization_current(born_charges, velocities), timestep_fs,
                           method="current", **options)
    spectrum.metadata["current"] = "sum_i Z*_i v_i"
    return spectrum
