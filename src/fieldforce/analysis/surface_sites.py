"""Adsorption sites of an adatom on a slab's top layer and its hops between them.

The adsorption sites are the hollows of the top layer (the points farthest
from its atoms: one per cell on a square (100) layer, the fcc and the hcp hollow on a
hexagonal (111) one) and their lattice translations; a hop is counted when the adatom
comes within the capture radius of a site other than its last one. The radius must
stay short of the bridge between two top-layer atoms, where the hop's saddle is: 0.7 of
the site-to-bridge distance by default, which is 0.35 lattice spacings on (100) but
0.20 on (111), where the bridge lies 0.29 spacings from a hollow (until 2026-12-06 the
sites were the fcc hollows alone and the radius 0.35 spacings, which on (111) counted
excursions from an hcp hollow towards a bridge as hops). Recrossings of a saddle count
once.

The escape rate out of a kind of site (:func:`escapes_by_kind`: hops out of it over the
time spent there) is what a NEB from that site predicts under transition-state theory.
Everything here is geometry on the adatom's lateral path; the rates and fits built on it
are in :mod:`fieldforce.analysis.diffusion`.
"""

from __future__ import annotations

import numpy as np

from fieldforce.data.slab import surface_normal
from fieldforce.errors import DataError


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
    return len(events), mean_jump_length2(events)


def mean_jump_length2(events) -> float:
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


__all__ = ["count_hops", "escapes_by_kind", "hollow_sites", "hop_events", "mean_jump_length2",
           "mean_structure", "surface_lattice", "unwrap_lateral"]
