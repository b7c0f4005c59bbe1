"""Field-dependent migration barriers: the second-order fit and its plot.

To second order in the field F along the surface normal, the barrier of a hop is

    E_m(F) = E_m0 - dmu F - 1/2 dalpha F²

with dmu and dalpha the dipole and polarizability of the saddle minus those of the
initial minimum. :func:`fit_barriers` fits E_m0, dmu and dalpha to barriers measured
at several fields (NEB, :func:`fieldforce.simulation.neb.field_barriers`); the fitted
dmu and dalpha include the relaxation of the geometries in the field, the ones read at
fixed zero-field geometries do not, and the two agree when that relaxation is small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fieldforce.errors import ConfigError


@dataclass(frozen=True)
class BarrierFit:
    """E_m(F) = e0 - dmu F - 1/2 dalpha F²: e0 eV, dmu e·Å, dalpha e·Å²/V, rms of the
    residuals eV, and the number of fields fitted."""

    e0: float
    dmu: float
    dalpha: float
    rms: float
    n: int

    def __call__(self, field) -> np.ndarray:
        f = np.asarray(field, dtype=float)
        return self.e0 - self.dmu * f - 0.5 * self.dalpha * f**2


def fit_barriers(fields, barriers) -> BarrierFit:
    """Least-squares fit of E_m0, dmu, dalpha to barriers [F] eV at fields [F] V/Å (at
    least three distinct fields)."""
    f = np.asarray(fields, dtype=float).ravel()
    e = np.asarray(barriers, dtype=float).ravel()
    if f.shape != e.shape:
        raise ConfigError(f"{len(f)} fields but {len(e)} barriers")
    if len(np.unique(f)) < 3:
        raise ConfigError(f"the second-order fit needs at least three distinct fields; got "
                          f"{sorted(set(f.tolist()))} V/Å")
    design = np.stack([np.ones_like(f), -f, -0.5 * f**2], axis=1)
    coef, *_ = np.linalg.lstsq(design, e, rcond=None)
    rms = float(np.sqrt(np.mean((design @ coef - e) ** 2)))
    return BarrierFit(e0=float(coef[0]), dmu=float(coef[1]), dalpha=float(coef[2]),
                      rms=rms, n=len(f))


def _signed(value: float) -> str:
    """``+ 0.123`` or ``- 0.123``: a term of a printed formula."""
    return f"{'-' if value < 0 else '+'} {abs(value):.3f}"


def plot_barriers(path: str | Path, fields, barriers, fit: BarrierFit | None = None,
                  direct: tuple[float, float, float] | None = None,
                  reference: tuple[np.ndarray, np.ndarray] | None = None,
                  title: str = "", spread=None, members=None) -> Path:
    """E_m(F): the measured barriers, the fitted parabola and, with ``direct`` =
    (E_m0, dmu, dalpha), the second-order formula from the dipole and polarizability
    read at the zero-field states; ``reference`` = (fields, barriers) of another method
    (DFT). For a committee: ``barriers`` its mean, ``spread`` [n_fields] the standard
    deviation (error bars), ``members`` each model's barriers (faint). Written
    atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.data.atomic import finish_figure

    f = np.asarray(fields, dtype=float)
    grid = np.linspace(min(f.min(), 0.0) - 0.05, max(f.max(), 0.0) + 0.05, 200)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    if members is not None:
        for k, member in enumerate(members):
            ax.plot(f, member, ".", color="C0", alpha=0.35,
                    label="committee members" if k == 0 else None)
    if spread is not None:
        ax.errorbar(f, barriers, yerr=spread, fmt="o", color="C0", capsize=3,
                    label=f"NEB, mean ± sd of {len(members or [])} models" if members
                    else "NEB ± sd")
    else:
        ax.plot(f, barriers, "o", color="C0", label="NEB")
    if fit is not None:
        ax.plot(grid, fit(grid), "-", color="C0", alpha=0.6,
                label=f"fit: {fit.e0:.3f} {_signed(-fit.dmu)} F {_signed(-fit.dalpha / 2)} F²")
    if direct is not None:
        e0, dmu, dalpha = direct
        ax.plot(grid, e0 - dmu * grid - 0.5 * dalpha * grid**2, "--", color="C1",
                label=f"from Δμ = {dmu:.3f} eÅ, Δα = {dalpha:.3f} eÅ²/V")
    if reference is not None:
        ax.plot(reference[0], reference[1], "s", color="C3", label="DFT")
    ax.set_xlabel("field along the surface normal F (V/Å)")
    ax.set_ylabel("migration barrier E$_m$ (eV)")
    return finish_figure(fig, path, ax, title)


__all__ = ["BarrierFit", "fit_barriers", "plot_barriers"]
