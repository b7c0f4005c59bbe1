"""Surface diffusion of an adatom: hops, the tracer diffusion coefficient, Arrhenius fits.

From the adatom's lateral path (its position projected on the surface plane, unwrapped
across the periodic cell):

* **hops**: the adsorption sites are the hollows of the top layer (the points farthest
  from its atoms: one per cell on a square (100) layer, the fcc and the hcp hollow on a
  hexagonal (111) one) and their lattice translations; a hop is counted when the adatom
  comes within the capture radius of a site other than its last one. The radius must
  stay short of the bridge between two top-layer atoms, where the hop's saddle is: 0.7 of
  the site-to-bridge distance by default, which is 0.35 lattice spacings on (100) but
  0.20 on (111), where the bridge lies 0.29 spacings from a hollow (until 2026-12-06 the
  sites were the fcc hollows alone and the radius 0.35 spacings, which on (111) counted
  excursions from an hcp hollow towards a bridge as hops). Recrossings of a saddle count
  once. Each hop's mean displacement is zero given the site it leaves (the three
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

from fieldforce.data.slab import surface_normal
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


def surface_lattice(atoms, adatom: int, layer_tol: float = 0.5) -> tuple[np.ndarray,
                                                                       np.ndarray]:
    """(normal [3], primitive in-plane lattice vectors [2, 3] Å) of the slab's top layer
    (the atoms, other than ``adatom``, within ``layer_tol`` Å of the highest one)."""
    normal = surface_normal(atoms, "surface diffusion")
    a, b = atoms.cell.array[atoms.pbc]
    others = np.delete(np.arange(len(atoms)), adatom % len(atoms))
    heights = atoms.positions[others] @ normal
    top = others[heights > heights.max() - layer_tol]
    if len(top) < 1:
        raise DataError("no top layer found under the adatom")
    # every in-plane vector between top-layer atoms and their periodic images
    vectors = []
    for i in top:
        for j in top:
            for n1 in range(-1, 2):
                for n2 in range(-1, 2):
                    v = atoms.positions[j] - atoms.positions[i] + n1 * a + n2 * b
                    v = v - (v @ normal) * normal
                    if np.linalg.norm(v) > 0.5:
                        vectors.append(v)
    vectors = np.array(vectors)
    vectors = vectors[np.argsort(np.linalg.norm(vectors, axis=1), kind="stable")]
    first = vectors[0]
    for v in vectors[1:]:
        if np.linalg.norm(np.cross(first, v)) > 0.1 * np.linalg.norm(first) * np.linalg.norm(v):
            return normal, np.array([first, v])
    raise DataError("the top layer has no two independent in-plane lattice vectors")


def unwrap_lateral(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """[T, 3] positions of one atom -> [T, 3] continuous path (no jumps across the
    periodic cell): each step is the shortest periodic image of the raw step (checked
    over the neighbouring images, right for oblique cells too). Frames must be closer in
    time than half a cell's crossing."""
    periodic = cell[np.asarray(pbc, bool)]
    steps = np.diff(positions, axis=0)
    inverse = np.linalg.pinv(periodic.T)  # Cartesian -> fractional along the periodic vectors
    steps = steps - np.round(steps @ inverse.T) @ periodic
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ periodic  # [9, 3]
    candidates = steps[:, None, :] + shifts[None, :, :]
    best = np.argmin(np.linalg.norm(candidates, axis=2), axis=1)
    steps = candidates[np.arange(len(steps)), best]
    return np.concatenate([positions[:1], positions[:1] + np.cumsum(steps, axis=0)])


def mean_structure(frames, n_frames: int = 400):
    """The first frame with each atom at its mean position over the first ``n_frames``
    frames, taken along its continuous path (no jumps across the cell): the slab's ideal
    layers, which one thermal frame is not (its shortest interatomic vectors are a few %
    short of the lattice's)."""
    first = frames[0]
    mean = first.copy()
    mean.positions = np.array([
        unwrap_lateral(np.array([f.positions[i] for f in frames[:n_frames]]),
                       first.cell.array, first.pbc).mean(axis=0) for i in range(len(first))])
    return mean


def hollow_sites(atoms, adatom: int, normal: np.ndarray, lattice: np.ndarray,
                 layer_tol: float = 0.5) -> tuple[np.ndarray, float]:
    """(the hollow sites of one cell of the top layer [S, 3] Å, the distance from a site to
    the nearest bridge Å).

    ``atoms``: the slab, ideally a :func:`mean_structure` of the trajectory. Hollows
    are the points of the
    surface plane farthest from the top-layer atoms: the maxima, within 7 % of the largest,
    of the distance to the nearest atom on a 0.03 Å grid over one cell (refined to
    0.003 Å), one per cluster
    (one per cell on a square (100) layer; the fcc and the hcp hollow on a hexagonal
    (111) one). A bridge is the midpoint of two neighbouring top-layer atoms (closer than
    1.2 nearest-neighbour distances), where a hop's saddle lies. Sites carry height 0
    along ``normal``; only their lateral positions matter."""
    a, b = atoms.cell.array[atoms.pbc]
    others = np.delete(np.arange(len(atoms)), adatom % len(atoms))
    heights = atoms.positions[others] @ normal
    layer = atoms.positions[others[heights > heights.max() - layer_tol]]
    layer = layer - np.outer(layer @ normal, normal)
    plane = _in_plane_images(layer, a, b, normal)
    origin = layer[0]
    plane = plane[np.linalg.norm(plane - origin, axis=1)
                  < 3 * np.linalg.norm(lattice, axis=1).max() + 6.0]
    # a grid over one cell of the top layer's lattice, from one of its atoms
    steps = [max(2, int(np.ceil(np.linalg.norm(v) / 0.03))) for v in lattice]
    u, v = np.meshgrid(np.arange(steps[0]) / steps[0], np.arange(steps[1]) / steps[1],
                       indexing="ij")
    points = origin + u.reshape(-1, 1) * lattice[0] + v.reshape(-1, 1) * lattice[1]
    clearance = np.linalg.norm(points[:, None] - plane[None], axis=2).min(axis=1)
    spacing = float(np.linalg.norm(lattice, axis=1).min())
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ lattice
    sites: list[np.ndarray] = []
    for k in np.argsort(-clearance):
        if clearance[k] < 0.93 * clearance.max():
            break
        if all(np.linalg.norm(points[k] + shifts - q, axis=1).min() > 0.3 * spacing
               for q in sites):
            # refine on a 0.003 Å grid around the coarse maximum
            fine = np.arange(-0.03, 0.0301, 0.003)
            local = (points[k] + fine[:, None, None] * lattice[0] / np.linalg.norm(lattice[0])
                     + fine[None, :, None] * np.cross(normal, lattice[0])
                     / np.linalg.norm(lattice[0])).reshape(-1, 3)
            reach = np.linalg.norm(local[:, None] - plane[None], axis=2).min(axis=1)
            sites.append(local[int(np.argmax(reach))])
    gaps = np.linalg.norm(plane[:, None] - plane[None], axis=2)
    nearest = float(gaps[gaps > 0.5].min())
    i, j = np.nonzero((gaps > 0.5) & (gaps < 1.2 * nearest))
    bridges = 0.5 * (plane[i] + plane[j])
    to_bridge = min(float(np.linalg.norm(bridges - q, axis=1).min()) for q in sites)
    # kinds in a fixed order: the site farthest (laterally) from a second-layer atom first
    below = others[heights <= heights.max() - layer_tol]
    if len(below):
        under = atoms.positions[below]
        under = _in_plane_images(under[under @ normal > (under @ normal).max() - layer_tol],
                                 a, b, normal)
        depth = [-float(np.linalg.norm(under - q, axis=1).min()) for q in sites]
        sites = [sites[k] for k in np.argsort(depth, kind="stable")]
    return np.array(sites), to_bridge


def _in_plane_images(points: np.ndarray, a: np.ndarray, b: np.ndarray,
                     normal: np.ndarray) -> np.ndarray:
    """[25 P, 3] the points and their periodic images two cells out along the lattice
    vectors ``a``, ``b``, projected onto the plane normal to ``normal``."""
    images = np.array([[i, j] for i in range(-2, 3) for j in range(-2, 3)]) @ np.array([a, b])
    out = (points[None] + images[:, None]).reshape(-1, 3)
    return out - np.outer(out @ normal, normal)


def hop_events(path: np.ndarray, lattice: np.ndarray, radius: float,
               sites: np.ndarray | None = None
               ) -> tuple[int, list[tuple[int, int, int, np.ndarray]]]:
    """The hops of a continuous lateral path [T, 3] between the sites ``sites`` [S, 3]
    (one cell's; default the lattice through ``path[0]``) and their translations by
    ``lattice`` [2, 3], a site capturing the adatom within ``radius`` Å: (the kind of
    the first site, [(frame of the capture, kind left, kind reached, jump [3] Å), ...])."""
    sites = path[:1] if sites is None else np.asarray(sites, float)
    normal = _unit_normal(lattice)
    inverse = np.linalg.pinv(lattice.T)
    moves = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)])
    best_distance = np.full(len(path), np.inf)
    best_site = np.zeros((len(path), 3))
    best_kind = np.zeros(len(path), dtype=int)
    for kind, q in enumerate(sites):
        offset = path - q
        offset = offset - np.outer(offset @ normal, normal)
        frac = offset @ inverse.T  # [T, 2]
        # the nearest translation: rounding in an oblique basis can miss it
        candidates = np.round(frac)[:, None, :] + moves[None]  # [T, 9, 2]
        distance = np.linalg.norm(offset[:, None, :] - candidates @ lattice, axis=2)
        pick = np.argmin(distance, axis=1)
        d = distance[np.arange(len(path)), pick]
        better = d < best_distance
        best_distance[better] = d[better]
        best_site[better] = q + candidates[np.arange(len(path)), pick][better] @ lattice
        best_kind[better] = kind
    best_site = best_site - np.outer(best_site @ normal, normal)
    site, kind = best_site[0], int(best_kind[0])
    first, events = kind, []
    for t in range(1, len(path)):
        if best_distance[t] < radius and np.linalg.norm(best_site[t] - site) > 1e-6:
            events.append((t, kind, int(best_kind[t]), best_site[t] - site))
            site, kind = best_site[t], int(best_kind[t])
    return first, events


def count_hops(path: np.ndarray, lattice: np.ndarray, radius: float,
               sites: np.ndarray | None = None) -> tuple[int, float]:
    """(hops, mean squared hop length Å²) of :func:`hop_events`."""
    _, events = hop_events(path, lattice, radius, sites)
    return len(events), _mean_square_jump(events)


def _mean_square_jump(events) -> float:
    """Mean squared length (Å²) of :func:`hop_events`' jumps; 0 without any."""
    return sum(float(jump @ jump) for *_, jump in events) / len(events) if events else 0.0


def escapes_by_kind(first: int, events, times_fs: np.ndarray, n_kinds: int
                    ) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(hops out of each kind of site, time spent in each kind fs) of
    :func:`hop_events`: a stay runs from the capture at a site to the capture at the
    next (the last stay is cut by the end of the run)."""
    escapes, residence = [0] * n_kinds, [0.0] * n_kinds
    kind, since = first, float(times_fs[0])
    for t, left, reached, _ in events:
        escapes[left] += 1
        residence[left] += float(times_fs[t]) - since
        kind, since = reached, float(times_fs[t])
    residence[kind] += float(times_fs[-1]) - since
    return tuple(escapes), tuple(residence)


def _unit_normal(lattice: np.ndarray) -> np.ndarray:
    n = np.cross(lattice[0], lattice[1])
    return n / np.linalg.norm(n)


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
    hops, length2 = len(events), _mean_square_jump(events)
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
                        escapes=escapes, residence_fs=residence)


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

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, t in enumerate(sorted({s.temperature for s in shifts})):
        group = [s for s in shifts if s.temperature == t]
        ref = group[0].reference_field
        ax.errorbar([ref] + [s.field for s in group], [0.0] + [1000 * s.shift for s in group],
                    yerr=[0.0] + [1000 * s.shift_error for s in group], fmt="o", capsize=3,
                    color=f"C{k}", label=f"MD, {t:g} K: D from hops")
        escaped = [s for s in group if s.escape_shift is not None]
        if escaped:  # beside the D points (x nudged), open squares
            ax.errorbar([s.field + 0.03 for s in escaped],
                        [1000 * s.escape_shift for s in escaped],
                        yerr=[1000 * s.escape_shift_error for s in escaped], fmt="s",
                        mfc="none", capsize=3, color=f"C{k}",
                        label=f"MD, {t:g} K: escape rate from the first site kind")
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
    return finish_figure(fig, path, ax, title)


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


def check_capture(capture: float | None) -> None:
    if capture is not None and not 0 < capture < 0.5:
        raise ConfigError(f"the capture radius must be between 0 and 0.5 lattice spacings "
                          f"(below half a hop); got {capture}")


__all__ = ["ArrheniusFit", "DiffusionRun", "FieldShift", "KB_EV", "arrhenius", "count_hops",
           "diffusion_run", "escapes_by_kind", "field_shifts", "hollow_sites", "hop_events",
           "mean_structure", "msd_diffusion", "plot_arrhenius", "plot_field_shifts",
           "surface_lattice", "to_dict", "unwrap_lateral"]
