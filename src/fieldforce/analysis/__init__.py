"""Analysis of simulation output (layer 5: reads trajectories, never imports models).

Modules:

- :mod:`fieldforce.analysis.spectra` — infrared absorption spectra from dipole
  (or polarization-current) time series: :func:`ir_spectrum`, :class:`IRSpectrum`,
  :func:`dipole_autocorrelation`, :func:`polarization_current` (J = sum_i Z*_i v_i),
  :func:`polarization_current_spectrum`.
"""

from __future__ import annotations

from fieldforce.analysis.spectra import (
    IRSpectrum,
    Peak,
    dipole_autocorrelation,
    ir_spectrum,
    polarization_current,
    polarization_current_spectrum,
)

__all__ = ["IRSpectrum", "Peak", "dipole_autocorrelation", "ir_spectrum",
           "polarization_current", "polarization_current_spectrum"]
