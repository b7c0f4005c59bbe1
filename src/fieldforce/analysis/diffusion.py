"""Surface diffusion of an adatom: hops, the tracer diffusion coefficient, Arrhenius fits.

From the adatom's lateral path (its position projected on the surface plane, unwrapped
across the periodic cell):

* **hops** between the hollows of the top layer, and the escape rates out of each kind
  of hollow (:mod:`fieldforce.analysis.surface_sites`, which says how they are found and
  counted). Each hop's mean displacement is zero given the site it leaves (the three
  directions out of a (111) hollow sum to zero), so successive hops are uncorrelated
  and the relation below holds on the two-site (111) lattice too;
* **D from hops**: D = n l² / (4 t) for n hops of mean squared length l² in time t
  (uncorrelated hops in two dimensions), relative uncertainty 1/sqrt(n);
* **D from the mean squared displacement**: the slope of MSD(tau) / 4 (with an intercept
  for the vibrations) over lag times up to a twentieth of the run, averaged over time
  origins (no sites needed; short lags keep the variance of a single walk low).

An Arrhenius fit ln D = ln D0 - E_a / (k_B T) over temperatures, per field, gives the
prefactor and the activation energy that the NEB barrier at that field predicts
(:mod:`fieldforce.analysis.barriers`).

At one temperature, the field's shift of the activation energy is
dE_a(F) = -k_B T ln(D(F) / D(F_ref)) (the prefactor taken as field-independent), with the
counting error k_B T sqrt(1/n_F + 1/n_ref): the quantity to hold against the NEB's
E_m(F) - E_m(F_ref), and far cheaper to measure than an Arrhenius fit, since a low barrier
shifted by a field needs many hops at one temperature rather than few at several
(:func:`field_shifts`; runs at the same temperature and field are pooled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fieldforce.analysis.surface_sites import (
    count_hops,
    escapes_by_kind,
    hollow_sites,
    hop_events,
    mean_jump_length2,
    mean_structure,
    surface_lattice,
    unwrap_lateral,
)
from fieldforce.errors import ConfigError, DataError

#: Boltzmann constant, eV/K
KB_EV = 8.617333262e-5
#: default capture radius, as a fraction of the distance from a site to the nearest bridge
CAPTURE_OF_BRIDGE = 0.7


@dataclass(frozen=True)
class DiffusionRun:
    """One trajectory's diffusion: temperature K, field V/Å (along the normal), duration
    fs, hops and their mean squared length Å², D from hops and from the MSD (Å²/ps); and
    per kind of site (:func:`hollow_sites`' order: kind 0 has no second-layer atom
    below it, the fcc hollow on (111)) the hops out of it and the time spent there (fs):
    their ratio is the escape rate whose barrier the NEB from that site computes."""

    temperature: float
    field: float
    duration_fs: float
    hops: int
    hop_length2: float
    d_hops: float
    d_msd: float
    escapes: tuple[int, ...] = ()
    residence_fs: tuple[float, ...] = ()
    source: str = ""  # the trajectory it was analysed from

    @property
    def d_hops_error(self) -> float:
        """Counting uncertainty of ``d_hops`` (Å²/ps)."""
        return self.d_hops / np.sqrt(self.hops) if self.hops else float("nan")


@dataclass(frozen=True)
class ArrheniusFit:
    """D(T) = d0 exp(-e_a / k_B T) at one field: d0 Å²/ps, e_a eV with its standard error,
    from ``n`` temperatures."""

    field: float
    d0: float
    e_a: float
    e_a_error: float
    n: int


@dataclass(frozen=True)
class FieldShift:
    """dE_a = -k_B T ln(D(F) / D(F_ref)) at one temperature (K): eV, with its counting
    error, from the pooled hops at F and at the reference field (V/Å); and the same from
    the escape rate out of kind-0 sites (``escape_shift``; None without escapes), the
    NEB's E_m(F) - E_m(F_ref) for a hop from that site under transition-state theory,
    which correlated recrossings that inflate D from hops do not bias."""

    temperature: float
    field: float
    reference_field: float
    shift: float
    shift_error: float
    hops: int
    reference_hops: int
    escape_shift: float | None = None
    escape_shift_error: float | None = None
    escapes: int = 0
    reference_escapes: int = 0


def msd_diffusion(path: np.ndarray, times_fs: np.ndarray, normal: np.ndarray) -> float:
    """D (Å²/ps) from the in-plane mean squared displacement of a continuous path [T, 3]:
    least-squares slope of MSD(tau) = 4 D tau + c (c: the vibrations), lags up to T/20."""
    lateral = path - np.outer(path @ normal, normal)
    n = len(lateral)
    lags = np.arange(1, max(2, n // 20) + 1)
    msd = np.array([np.mean(np.sum((lateral[k:] - lateral[:-k]) ** 2, axis=1)) for k in lags])
    dt = float(np.mean(np.diff(times_fs))) / 1000.0  # ps
    design = np.stack([lags * dt, np.ones(len(lags))], axis=1)
    slope = np.linalg.lstsq(design, msd, rcond=None)[0][0]
    return float(slope / 4.0)


def diffusion_run(frames, times_fs: np.ndarray, temperature: float, adatom: int = -1,
                  capture: float | None = None, source: str = "trajectory") -> DiffusionRun:
    """Hops and D of the adatom in one trajectory (frames: ASE Atoms with the same atoms,
    times in fs). ``capture``: the capture radius in lattice spacings; None for 0.7 of
    the site-to-bridge distance (a radius reaching the bridge is an error)."""
    if len(frames) < 8:
        raise DataError(f"{source}: {len(frames)} frames; diffusion needs at least 8")
    first = frames[0]
    ideal = mean_structure(frames)
    normal, lattice = surface_lattice(ideal, adatom)
    raw = np.array([f.positions[adatom] for f in frames])
    path = unwrap_lateral(raw, first.cell.array, first.pbc)
    sites, to_bridge = hollow_sites(ideal, adatom, normal, lattice)
    spacing = float(np.linalg.norm(lattice, axis=1).min())
    radius = CAPTURE_OF_BRIDGE * to_bridge if capture is None else capture * spacing
    if radius >= to_bridge:
        raise ConfigError(
            f"{source}: a capture radius of {capture} lattice spacings ({radius:.2f} Å) "
            f"reaches the bridge {to_bridge:.2f} Å from the site, where the hop's saddle is: "
            f"vibrations towards it would count as hops; use less than "
            f"{to_bridge / spacing:.2f} (or the default, {CAPTURE_OF_BRIDGE} of the way)")
    first_kind, events = hop_events(path, lattice, radius, sites)
    hops, length2 = len(events), mean_jump_length2(events)
    escapes, residence = escapes_by_kind(first_kind, events, times_fs, len(sites))
    duration = float(times_fs[-1] - times_fs[0])
    if duration <= 0:
        raise DataError(f"{source}: the frames span no time (time_fs {times_fs[0]} to "
                        f"{times_fs[-1]})")
    fields = [float(np.asarray(f.info.get("efield", np.zeros(3)), float) @ normal)
              for f in frames]
    d_hops = hops * length2 / (4.0 * duration / 1000.0) if hops else 0.0
    return DiffusionRun(temperature=float(temperature), field=float(np.mean(fields)),
                        duration_fs=duration, hops=hops, hop_length2=length2,
                        d_hops=d_hops, d_msd=msd_diffusion(path, times_fs, normal),
                        escapes=escapes, residence_fs=residence, source=source)


def arrhenius(runs: list[DiffusionRun], field_tol: float = 1e-3, use: str = "hops"
              ) -> list[ArrheniusFit]:
    """Arrhenius fits per field (runs whose fields agree within ``field_tol`` V/Å), over
    the runs with at least one hop, weighted by the counting statistics (``use="hops"``),
    unweighted on the MSD coefficients (``use="msd"``), or of the escape rate out of
    kind-0 sites weighted by its counts (``use="escapes"``: ``d0`` is then the attempt
    frequency, 1/ps, and ``e_a`` the barrier a NEB from that site computes); fields with
    fewer than two such temperatures are left out."""
    if use not in ("hops", "msd", "escapes"):
        raise ConfigError(f"arrhenius: use is 'hops', 'msd' or 'escapes', not {use!r}")
    fits = []
    for field, group in sorted(_by_field(runs, field_tol).items()):
        d = np.array([r.d_hops if use == "hops" else r.d_msd if use == "msd"
                      else _escape_rate([r])[1] for r in group])
        keep = d > 0
        if len({r.temperature for r, k in zip(group, keep, strict=True) if k}) < 2:
            continue
        t = np.array([r.temperature for r in group])[keep]
        counts = {"hops": [r.hops for r in group],
                  "escapes": [r.escapes[0] if r.escapes else 0 for r in group],
                  "msd": [1] * len(group)}[use]
        w = np.sqrt(counts)[keep]
        x = -1.0 / (KB_EV * t)
        design = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
        coef, *_ = np.linalg.lstsq(design, np.log(d[keep]) * w, rcond=None)
        cov = np.linalg.pinv(design.T @ design)
        if use == "msd" and len(t) > 2:  # no counting errors: scale by the residuals
            resid = np.log(d[keep]) - np.stack([np.ones_like(x), x], 1) @ coef
            cov = cov * float(resid @ resid) / (len(t) - 2)
        fits.append(ArrheniusFit(field=float(field), d0=float(np.exp(coef[0])),
                                 e_a=float(coef[1]), e_a_error=float(np.sqrt(cov[1, 1])),
                                 n=len(t)))
    return fits


def _by_field(runs: list[DiffusionRun], field_tol: float) -> dict[float, list[DiffusionRun]]:
    """Runs grouped by field: each joins the first field seen within ``field_tol`` V/Å."""
    groups: dict[float, list[DiffusionRun]] = {}
    for run in runs:
        key = next((k for k in groups if abs(k - run.field) <= field_tol), run.field)
        groups.setdefault(key, []).append(run)
    return groups


def _pooled(runs: list[DiffusionRun]) -> tuple[int, float]:
    """Hops and D from hops (Å²/ps) of runs at the same temperature and field taken as
    one: D = sum n l² / (4 sum t)."""
    hops = sum(r.hops for r in runs)
    moved = sum(r.hops * r.hop_length2 for r in runs)
    return hops, moved / (4.0 * sum(r.duration_fs for r in runs) / 1000.0)


def _escape_rate(runs: list[DiffusionRun]) -> tuple[int, float]:
    """Hops out of kind-0 sites and their rate (1/ps) of runs taken as one."""
    escapes = sum(r.escapes[0] for r in runs if r.escapes)
    time = sum(r.residence_fs[0] for r in runs if r.residence_fs)
    return escapes, (escapes / (time / 1000.0) if time > 0 else 0.0)


def field_shifts(runs: list[DiffusionRun], reference_field: float = 0.0,
                 field_tol: float = 1e-3) -> list[FieldShift]:
    """The field's shift of the activation energy at each temperature that has a run at
    ``reference_field`` (V/Å), for every other field run there (see the module doc).
    Fields whose pooled runs, or whose reference, have no hop are left out: the shift is
    then only a bound."""
    temperatures = sorted({r.temperature for r in runs})
    shifts = []
    for t in temperatures:
        here = [r for r in runs if abs(r.temperature - t) < 1e-6]
        ref = [r for r in here if abs(r.field - reference_field) <= field_tol]
        n_ref, d_ref = _pooled(ref) if ref else (0, 0.0)
        if not n_ref:
            continue
        m_ref, k_ref = _escape_rate(ref)
        kt = KB_EV * t
        for field, group in sorted(_by_field(here, field_tol).items()):
            if abs(field - reference_field) <= field_tol:
                continue
            n, d = _pooled(group)
            if not n:
                continue
            m, k = _escape_rate(group)
            has_escapes = bool(m and m_ref)
            shifts.append(FieldShift(
                temperature=t, field=field, reference_field=reference_field,
                shift=float(-kt * np.log(d / d_ref)),
                shift_error=float(kt * np.sqrt(1.0 / n + 1.0 / n_ref)), hops=n,
                reference_hops=n_ref,
                escape_shift=float(-kt * np.log(k / k_ref)) if has_escapes else None,
                escape_shift_error=(float(kt * np.sqrt(1.0 / m + 1.0 / m_ref))
                                    if has_escapes else None),
                escapes=m, reference_escapes=m_ref))
    return shifts


def plot_field_shifts(path: str | Path, shifts: list[FieldShift],
                      neb: tuple[list[float], list[float]] | None = None,
                      title: str = "") -> Path:
    """dE_a(F) with error bars, from D (dots) and from the escape rate (squares), one
    colour per temperature, and (``neb``: fields V/Å, barriers eV) the NEB's
    E_m(F) - E_m(F_ref) as a line. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.data.atomic import finish_figure

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for k, t in enumerate(sorted({s.temperature for s in shifts})):
        group = [s for s in shifts if s.temperature == t]
        ref = group[0].reference_field
        ax.errorbar([ref] + [s.field for s in group], [0.0] + [1000 * s.shift for s in group],
                    yerr=[0.0] + [1000 * s.shift_error for s in group], fmt="o", capsize=3,
                    color=f"C{k}", label=f"MD {t:g} K: D from hops")
        escaped = [s for s in group if s.escape_shift is not None]
        if escaped:  # beside the D points (x nudged), open squares
            ax.errorbar([s.field + 0.03 for s in escaped],
                        [1000 * s.escape_shift for s in escaped],
                        yerr=[1000 * s.escape_shift_error for s in escaped], fmt="s",
                        mfc="none", capsize=3, color=f"C{k}",
                        label=f"MD {t:g} K: escape rate, first site kind")
    if neb is not None and shifts:
        fields, barriers = np.asarray(neb[0], float), np.asarray(neb[1], float)
        ref = shifts[0].reference_field
        at_ref = np.flatnonzero(np.abs(fields - ref) <= 1e-3)
        if len(at_ref):
            order = np.argsort(fields)
            ax.plot(fields[order], 1000 * (barriers[order] - barriers[at_ref[0]]), "k--",
                    label="NEB E$_m$(F) − E$_m$(ref)")
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.set_xlabel("field along the normal F (V/Å)")
    ax.set_ylabel("ΔE$_a$(F) = −k$_B$T ln(rate(F)/rate(ref)) (meV)")
    return finish_figure(fig, path, ax, title, legend_outside=True)


def plot_arrhenius(path: str | Path, runs: list[DiffusionRun], fits: list[ArrheniusFit],
                   title: str = "") -> Path:
    """ln D vs 1000/T, one colour per field, with the fitted lines. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.data.atomic import finish_figure

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, fit in enumerate(fits):
        group = [r for r in runs if abs(r.field - fit.field) <= 1e-3 and r.d_hops > 0]
        t = np.array([r.temperature for r in group])
        d = np.array([r.d_hops for r in group])
        err = np.array([1 / np.sqrt(r.hops) for r in group])
        ax.errorbar(1000 / t, np.log(d), yerr=err, fmt="o", color=f"C{k}")
        grid = np.linspace(1000 / t.max() * 0.95, 1000 / t.min() * 1.05, 50)
        ax.plot(grid, np.log(fit.d0) - fit.e_a / (KB_EV * 1000 / grid), "-", color=f"C{k}",
                label=f"F = {fit.field:+.2f} V/Å: E$_a$ = {fit.e_a:.3f} ± {fit.e_a_error:.3f} eV")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("ln D (D in Å²/ps)")
    return finish_figure(fig, path, ax, title)


def to_dict(runs: list[DiffusionRun], fits: list[ArrheniusFit],
            shifts: list[FieldShift] = (), escape_fits: list[ArrheniusFit] = ()) -> dict:
    """JSON-ready runs, fits (of D; of the kind-0 escape rate, whose d0 is in 1/ps) and
    field shifts, with units."""
    return {"runs": [asdict(r) | {"d_hops_error": r.d_hops_error} for r in runs],
            "arrhenius": [asdict(f) for f in fits],
            "arrhenius_escapes": [asdict(f) for f in escape_fits],
            "field_shifts": [asdict(s) for s in shifts],
            "units": {"temperature": "K", "field": "V/Å", "duration_fs": "fs",
                      "hop_length2": "Å²", "d_hops": "Å²/ps", "d_msd": "Å²/ps",
                      "d0": "Å²/ps (arrhenius_escapes: 1/ps)", "e_a": "eV",
                      "shift": "eV", "residence_fs": "fs"}}


#: what a run of :func:`to_dict` must hold to be pooled again, and its numbers' kind
_RUN_KEYS = {"temperature": float, "field": float, "duration_fs": float, "hops": int,
             "hop_length2": float, "d_hops": float, "d_msd": float}


def runs_from_dict(data, source: str) -> list[DiffusionRun]:
    """The runs of an earlier analysis (the JSON :func:`to_dict` wrote, read from
    ``source``), as analysed then, to pool with new ones when their trajectories are no
    longer kept. A run without its own ``source`` (files written before it was recorded)
    takes the file's ``trajectories`` entry at its index where there is one."""
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        raise DataError("expected the JSON of `fieldforce analyze diffusion` (a 'runs' list)",
                        path=source)
    names = data.get("trajectories")
    names = names if isinstance(names, list) and len(names) == len(runs) else None
    out = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise DataError(f"run {i}: expected an object, got {type(run).__name__}",
                            path=source)
        values = {}
        for key, kind in _RUN_KEYS.items():
            value = run.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and value != int(value)) or not np.isfinite(value):
                raise DataError(f"run {i}: expected {'an integer' if kind is int else 'a number'}"
                                f", got {value!r}", path=source, key=key)
            values[key] = kind(value)
        escapes, residence = run.get("escapes", []), run.get("residence_fs", [])
        if not (isinstance(escapes, list) and isinstance(residence, list)
                and len(escapes) == len(residence)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        for x in escapes + residence)):
            raise DataError(f"run {i}: 'escapes' and 'residence_fs' must be lists of numbers "
                            "of equal length (one entry per kind of site)", path=source)
        origin = run.get("source") or (names[i] if names else f"{source}, run {i}")
        out.append(DiffusionRun(**values, escapes=tuple(int(e) for e in escapes),
                                residence_fs=tuple(float(t) for t in residence),
                                source=str(origin)))
    return out


def check_capture(capture: float | None) -> None:
    if capture is not None and not 0 < capture < 0.5:
        raise ConfigError(f"the capture radius must be between 0 and 0.5 lattice spacings "
                          f"(below half a hop); got {capture}")


__all__ = ["ArrheniusFit", "DiffusionRun", "FieldShift", "KB_EV", "arrhenius", "count_hops",
           "diffusion_run", "escapes_by_kind", "field_shifts", "hollow_sites", "hop_events",
           "mean_structure", "msd_diffusion", "plot_arrhenius", "plot_field_shifts",
           "runs_from_dict", "surface_lattice", "to_dict", "unwrap_lateral"]
