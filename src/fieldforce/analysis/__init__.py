"""Analysis of simulation output (layer 6: reads trajectories, never imports models).

Modules:

- :mod:`fieldforce.analysis.spectra` — infrared absorption spectra from dipole
  (or polarization-current) time series: :func:`ir_spectrum`, :class:`IRSpectrum`,
  :func:`dipole_autocorrelation`, :func:`polarization_current` (J = sum_i Z*_i v_i),
  :func:`polarization_current_spectrum`.
- :mod:`fieldforce.analysis.hysteresis` — remanent polarization and coercive field of
  a P(E) loop under an AC field: :func:`hysteresis_loop`, :class:`HysteresisLoop`.
- :mod:`fieldforce.analysis.barriers` — field-dependent migration barriers: the fit of
  E_m(F) = E_m0 - dmu F - 1/2 dalpha F² (:func:`fit_barriers`) and its plot.
- :mod:`fieldforce.analysis.diffusion` — adatom hops, tracer diffusion coefficient
  (hops and MSD), Arrhenius fits per field and the field's shift of the activation
  energy at one temperature (:func:`diffusion_run`, :func:`arrhenius`,
  :func:`field_shifts`).
- :mod:`fieldforce.analysis.surface_sites` — an adatom's adsorption sites (the top
  layer's hollows), its hops between them and the escape rates out of each kind of site.
- :mod:`fieldforce.analysis.trajectory` — time series (times, field, dipole,
  polarization, velocities, Born charges) from ``fieldforce md`` trajectories, with
  errors naming the file, frame and key.
"""

from __future__ import annotations

from fieldforce.analysis.barriers import BarrierFit, fit_barriers, plot_barriers
from fieldforce.analysis.diffusion import (
    ArrheniusFit,
    DiffusionRun,
    FieldShift,
    arrhenius,
    diffusion_run,
    field_shifts,
)
from fieldforce.analysis.hysteresis import HysteresisLoop, hysteresis_loop
from fieldforce.analysis.spectra import (
    IRSpectrum,
    Peak,
    dipole_autocorrelation,
    ir_spectrum,
    polarization_current,
    polarization_current_spectrum,
)

__all__ = ["ArrheniusFit", "BarrierFit", "DiffusionRun", "FieldShift", "HysteresisLoop",
           "IRSpectrum", "Peak", "arrhenius", "diffusion_run", "dipole_autocorrelation",
           "field_shifts", "fit_barriers",
           "hysteresis_loop", "ir_spectrum", "plot_barriers", "polarization_current",
           "polarization_current_spectrum"]
