"""Ferroelectric hysteresis: remanent polarization and coercive field from P(t) under E(t).

Given a field E(t) and the polarization P(t) along one axis, sampled at the same times
under an AC field (several cycles), the loop P(E) has two branches: the *rising* one
(dE/dt > 0) and the *falling* one (dE/dt < 0). The branches are read off the field,
which is applied and smooth, never off the (noisy) polarization.

* Remanent polarization: P where E crosses zero, linearly interpolated between the two
  samples around each crossing. P_r(up) on the rising branch (E from - to +), P_r(down)
  on the falling branch; each is the mean over the branches (half cycles) of the run,
  and the remanent polarization is P_r = (P_r(down) - P_r(up)) / 2.
* Loop centre: c = (P_r(up) + P_r(down)) / 2. The polarization of a periodic system is
  defined only up to a constant (its branch, i.e. quanta q a / V, and the origin of the
  cell), so by default (``center=True``) the coercive field is read where P crosses c.
* Coercive field: E where P - c crosses zero, interpolated between samples; per branch,
  all crossings within one half cycle are averaged first (thermal noise makes P flicker
  around c near the coercive field), then the half cycles. E_c = (E_c(up) - E_c(down)) / 2.

* Saturation and squareness: P_sat = (P(+E_max) - P(-E_max)) / 2 with P(+-E_max) the mean
  polarization over the samples where the field is within 10 % of its positive /
  negative extreme; squareness = P_r / P_sat, near 1 for a square switching loop.
  Neither proves switching: a strongly lagging dielectric response also opens a loop,
  and when P_sat is comparable to the thermal noise of P both numbers are noise. Look
  at P(t) (and whether P changes sign relative to its unpolarized reference) as well.

For a phase-lagged ellipse E = E0 sin(wt), P = P0 sin(wt - phi) this gives
P_r = P0 sin(phi), E_c = E0 sin(phi) and squareness tan(phi) / 0.966 (the mean of
cos over the 10 % window); for a square-ish ferroelectric loop, the usual P_r and E_c
and a squareness near 1. Drop the transient first cycle before calling (the ``time_fs``
and ``skip_fs`` arguments do it).

Units: field V/Å (1 MV/cm = 0.01 V/Å), polarization e/Å² (1 µC/cm² = 6.2415e-5 e/Å²);
:class:`HysteresisLoop` gives both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fieldforce.data.atomic import save_figure
from fieldforce.errors import ConfigError, DataError
from fieldforce.units import MV_PER_CM, UC_PER_CM2

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass
class HysteresisLoop:
    """A P(E) loop and its remanent polarization and coercive field.

    ``field`` [T] V/Å and ``polarization`` [T] e/Å²: the series along ``axis`` (unit
    vector [3]). ``remanent_up`` / ``remanent_down``: P at E = 0 on the rising / falling
    branch (e/Å², signed, means over half cycles; ``remanent_up_values`` etc. hold one
    value per half cycle); ``coercive_up`` / ``coercive_down``: E at P = ``center`` on
    each branch (V/Å, signed).
    """

    field: np.ndarray
    polarization: np.ndarray
    axis: np.ndarray
    remanent_up: float
    remanent_down: float
    coercive_up: float
    coercive_down: float
    center: float
    remanent_up_values: np.ndarray
    remanent_down_values: np.ndarray
    coercive_up_values: np.ndarray
    coercive_down_values: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def remanent(self) -> float:
        """Remanent polarization (P_r(down) - P_r(up)) / 2, e/Å² (> 0 for a normal loop)."""
        return 0.5 * (self.remanent_down - self.remanent_up)

    @property
    def coercive(self) -> float:
        """Coercive field (E_c(up) - E_c(down)) / 2, V/Å (> 0 for a normal loop)."""
        return 0.5 * (self.coercive_up - self.coercive_down)

    @property
    def remanent_uC_per_cm2(self) -> float:
        """:attr:`remanent` in µC/cm²."""
        return self.remanent / UC_PER_CM2

    @property
    def saturation(self) -> float:
        """P_sat = (P(+E_max) - P(-E_max)) / 2, e/Å² (module docstring)."""
        top = float(np.abs(self.field).max())
        high = self.polarization[self.field >= 0.9 * top]
        low = self.polarization[self.field <= -0.9 * top]
        if not (high.size and low.size) or top == 0.0:
            return float("nan")
        return 0.5 * float(high.mean() - low.mean())

    @property
    def squareness(self) -> float:
        """P_r / P_sat: near 1 for a square switching loop (module docstring: a hint, not
        a proof of switching)."""
        return self.remanent / self.saturation

    @property
    def coercive_MV_per_cm(self) -> float:
        """:attr:`coercive` in MV/cm."""
        return self.coercive / MV_PER_CM

    def table(self) -> str:
        """Markdown table of the loop's numbers in both unit systems."""
        rows = [
            "| quantity | value | unit | value | unit |", "|---|---|---|---|---|",
            f"| remanent polarization P_r | {self.remanent:.6g} | e/Å² | "
            f"{self.remanent_uC_per_cm2:.4g} | µC/cm² |",
            f"| P at E = 0, rising / falling | {self.remanent_up:.6g} / "
            f"{self.remanent_down:.6g} | e/Å² | {self.remanent_up / UC_PER_CM2:.4g} / "
            f"{self.remanent_down / UC_PER_CM2:.4g} | µC/cm² |",
            f"| coercive field E_c | {self.coercive:.6g} | V/Å | "
            f"{self.coercive_MV_per_cm:.4g} | MV/cm |",
            f"| E at P = centre, rising / falling | {self.coercive_up:.6g} / "
            f"{self.coercive_down:.6g} | V/Å | {self.coercive_up / MV_PER_CM:.4g} / "
            f"{self.coercive_down / MV_PER_CM:.4g} | MV/cm |",
            f"| loop centre | {self.center:.6g} | e/Å² | {self.center / UC_PER_CM2:.4g} "
            "| µC/cm² |",
            f"| saturation P_sat (P at the field extremes) | {self.saturation:.6g} | e/Å² | "
            f"{self.saturation / UC_PER_CM2:.4g} | µC/cm² |",
            f"| squareness P_r / P_sat (about 1 for a square loop) | "
            f"{self.squareness:.3g} | | | |",
            f"| half cycles (rising / falling) | {len(self.remanent_up_values)} / "
            f"{len(self.remanent_down_values)} | | | |",
        ]
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (internal units and µC/cm², MV/cm); no series."""
        return {
            "axis": self.axis.tolist(),
            "remanent_e_per_A2": self.remanent,
            "remanent_uC_per_cm2": self.remanent_uC_per_cm2,
            "coercive_V_per_A": self.coercive,
            "coercive_MV_per_cm": self.coercive_MV_per_cm,
            "remanent_up_e_per_A2": self.remanent_up,
            "remanent_down_e_per_A2": self.remanent_down,
            "coercive_up_V_per_A": self.coercive_up,
            "coercive_down_V_per_A": self.coercive_down,
            "center_e_per_A2": self.center,
            "saturation_e_per_A2": self.saturation,
            "saturation_uC_per_cm2": self.saturation / UC_PER_CM2,
            "squareness": self.squareness,
            "remanent_up_values_e_per_A2": self.remanent_up_values.tolist(),
            "remanent_down_values_e_per_A2": self.remanent_down_values.tolist(),
            "coercive_up_values_V_per_A": self.coercive_up_values.tolist(),
            "coercive_down_values_V_per_A": self.coercive_down_values.tolist(),
            "n_samples": int(self.field.size),
            "metadata": dict(self.metadata),
        }

    def plot(self, path: str | os.PathLike[str], title: str | None = None) -> None:
        """PNG of the loop P (µC/cm²) against E (MV/cm), with P_r and E_c marked; written
        atomically (temporary file, then rename)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        e, p = self.field / MV_PER_CM, self.polarization / UC_PER_CM2
        ax.plot(e, p, lw=0.8, color="0.3")
        ax.plot([0.0, 0.0], [self.remanent_up / UC_PER_CM2, self.remanent_down / UC_PER_CM2],
                "o", color="tab:red", label=f"P(E=0): P_r = {self.remanent_uC_per_cm2:.3g} "
                "µC/cm²")
        c = self.center / UC_PER_CM2
        ax.plot([self.coercive_up / MV_PER_CM, self.coercive_down / MV_PER_CM], [c, c], "s",
                color="tab:blue", label=f"P = centre: E_c = {self.coercive_MV_per_cm:.3g} MV/cm")
        ax.axhline(c, color="0.8", lw=0.5)
        ax.axvline(0.0, color="0.8", lw=0.5)
        ax.set_xlabel("field / MV cm$^{-1}$")
        ax.set_ylabel("polarization / µC cm$^{-2}$")
        ax.set_title(title if title is not None else "hysteresis loop")
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, path, dpi=150)


def _direction(axis: Any, field: np.ndarray) -> np.ndarray:
    if axis is None:
        if field.ndim == 1:
            return np.array([1.0, 0.0, 0.0])
        strongest = field[np.argmax(np.linalg.norm(field, axis=1))]
        norm = np.linalg.norm(strongest)
        if norm == 0.0:
            raise DataError("field: zero at every sample, so it has no direction and no loop.")
        # an AC field peaks both ways: the sign that makes the largest component positive
        return strongest / norm * np.sign(strongest[np.argmax(np.abs(strongest))])
    if isinstance(axis, str):
        if axis.lower() not in _AXES:
            raise ConfigError(f"axis must be x, y, z or a vector [3], got {axis!r}.")
        out = np.zeros(3)
        out[_AXES[axis.lower()]] = 1.0
        return out
    vector = np.asarray(axis, dtype=float)
    if vector.shape != (3,) or not np.isfinite(vector).all() or not np.linalg.norm(vector):
        raise ConfigError(f"axis must be x, y, z or a non-zero vector [3], got {axis!r}.")
    return vector / np.linalg.norm(vector)


def _series(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected a numeric [T] or [T, 3] array ({exc}).") from None
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 3):
        raise DataError(f"{name}: expected shape [T] or [T, 3], got {list(arr.shape)}.")
    bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: non-finite value (NaN or inf) in sample {bad[0]}.")
    return arr


def _crossings(x: np.ndarray, y: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """y at the zeros of x inside ``intervals`` (indices k of samples k, k+1), linearly
    interpolated; a zero exactly on a sample counts once (for the interval ending there)."""
    x0, x1 = x[intervals], x[intervals + 1]
    hit = ((x0 < 0) & (x1 >= 0)) | ((x0 > 0) & (x1 <= 0))
    k = intervals[hit]
    f = x[k] / (x[k] - x[k + 1])
    return np.stack([k, y[k] + f * (y[k + 1] - y[k])], axis=1) if k.size else np.zeros((0, 2))


def _branch_means(crossings: np.ndarray, half_cycle: np.ndarray) -> np.ndarray:
    """One value per half cycle: the mean of that half cycle's crossings."""
    if not crossings.size:
        return np.zeros(0)
    ids = half_cycle[crossings[:, 0].astype(int)]
    return np.array([crossings[ids == i, 1].mean() for i in np.unique(ids)])


def hysteresis_loop(
    field: Any,
    polarization: Any,
    *,
    axis: Any = None,
    center: bool = True,
    time_fs: Any = None,
    skip_fs: float = 0.0,
) -> HysteresisLoop:
    """Remanent polarization and coercive field of P(t) under an AC field E(t).

    ``field`` [T] or [T, 3] V/Å and ``polarization`` [T] or [T, 3] e/Å², sampled at the
    same times. ``axis``: ``"x"``, ``"y"``, ``"z"`` or a vector [3] onto which both are
    projected; default: the direction of the strongest field sample (its largest
    component made positive). ``center``: read
    the coercive field where P crosses the loop centre (module docstring), not zero.
    ``time_fs`` [T] with ``skip_fs``: drop the samples before ``skip_fs`` (the transient).
    """
    e_all, p_all = _series(field, "field"), _series(polarization, "polarization")
    if e_all.shape[0] != p_all.shape[0]:
        raise DataError(f"field has {e_all.shape[0]} samples but polarization "
                        f"{p_all.shape[0]}: they must be sampled at the same times.")
    if e_all.ndim != p_all.ndim:
        raise DataError("field and polarization must both be [T] or both be [T, 3].")
    direction = _direction(axis, e_all)
    if e_all.ndim == 2:
        e_all, p_all = e_all @ direction, p_all @ direction
    if time_fs is not None:
        times = np.asarray(time_fs, dtype=float)
        if times.shape != e_all.shape:
            raise DataError(f"time_fs: expected {e_all.shape[0]} times, got {list(times.shape)}.")
        keep = times >= skip_fs
        e_all, p_all = e_all[keep], p_all[keep]
    elif skip_fs:
        raise ConfigError("skip_fs needs time_fs (the time of each sample).")
    if e_all.size < 4:
        raise DataError(f"need at least 4 samples for a loop, got {e_all.size}.")

    slope = np.sign(np.diff(e_all))
    # half cycles: maximal runs of intervals with the same sign of dE/dt
    half_cycle = np.concatenate([[0], np.cumsum(slope[1:] != slope[:-1])])
    rising, falling = np.flatnonzero(slope > 0), np.flatnonzero(slope < 0)
    up = _branch_means(_crossings(e_all, p_all, rising), half_cycle)
    down = _branch_means(_crossings(e_all, p_all, falling), half_cycle)
    for values, name in ((up, "rising"), (down, "falling")):
        if not values.size:
            raise DataError(f"field: never crosses zero on a {name} branch; a loop needs at "
                            "least one full cycle of an AC field along the axis "
                            f"{np.round(direction, 4).tolist()}.")
    c = 0.5 * (up.mean() + down.mean()) if center else 0.0
    shifted = p_all - c
    coercive = {}
    for name, intervals in (("rising", rising), ("falling", falling)):
        values = _branch_means(_crossings(shifted, e_all, intervals), half_cycle)
        if not values.size:
            raise DataError(f"polarization: never crosses the loop centre {c:.6g} e/Å² on a "
                            f"{name} branch of the field, so there is no coercive field "
                            "(is the field too weak to switch it?).")
        coercive[name] = values
    return HysteresisLoop(
        field=e_all, polarization=p_all, axis=direction,
        remanent_up=float(up.mean()), remanent_down=float(down.mean()),
        coercive_up=float(coercive["rising"].mean()),
        coercive_down=float(coercive["falling"].mean()), center=float(c),
        remanent_up_values=up, remanent_down_values=down,
        coercive_up_values=coercive["rising"], coercive_down_values=coercive["falling"],
        metadata={"centered": bool(center), "skip_fs": float(skip_fs)},
    )
