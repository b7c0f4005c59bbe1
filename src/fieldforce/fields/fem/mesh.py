"""The vacuum around a metal, meshed with gmsh, as a scikit-fem mesh with tagged boundaries.

The box is x, y in [0, W] (a quarter of the domain, for shapes symmetric about the planes
x = 0 and y = 0: those planes are then symmetry planes, zero normal field, like the outer
walls) or [-W, W], and z in [0, Z]; the metal (the plane z = 0 and the emitter standing on
it) is cut out of it. Element sizes grow linearly with the distance from the apex and
from the emitter's surface (``growth`` per Å), from ``size_apex`` and ``size_surface``,
up to ``size_max``: a sharp apex gets sub-radius elements, the far field a few large ones.

Second-order (10-node) tetrahedra by default, their edge midpoints on the true curved
surface (gmsh's high-order nodes): with P2 elements the mapping is then isoparametric, so
the surface is represented to third order and the apex field converges quickly; order 1
gives flat facets (the field at a faceted apex converges only linearly).

Boundaries: ``metal`` (phi = 0: every boundary facet that is not on a wall of the box),
``top`` (z = Z, where the applied field enters); all walls x, y = const are zero-flux.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fieldforce.errors import ConfigError
from fieldforce.fields.fem import require
from fieldforce.fields.fem.emitters import Emitter


@dataclass
class VacuumMesh:
    """A meshed vacuum region.

    Attributes
    ----------
    mesh
        scikit-fem ``MeshTet2`` (curved) or ``MeshTet``; coordinates in Å.
    metal_facets, top_facets
        facet indices of the metal surface (phi = 0) and of the top of the box.
    width, top
        the box: x, y in [0, width] (``quarter``) or [-width, width]; z in [0, top], Å.
    quarter
        True when the box is a quarter of a symmetric domain.
    apex
        the point whose field is the apex field, Å [3] (None for a flat metal).
    seconds
        meshing wall time.
    settings
        the sizes used (size_apex, size_surface, size_max, growth, order).
    extent
        (Lx, Ly): a box x in [0, Lx], y in [0, Ly] instead of ``width`` (atomistic
        metals, :mod:`~fieldforce.fields.fem.atomistic`); None for the canonical shapes.
    inside_metal
        a function of points [3, M] Å giving [M] bools: the mesh then covers the metal
        too, and every degree of freedom inside it is held at phi = 0 (a conductor's
        interior), besides the ``metal_facets``. None: the metal is cut out of the mesh.
    """

    mesh: Any
    metal_facets: np.ndarray
    top_facets: np.ndarray
    width: float
    top: float
    quarter: bool
    apex: np.ndarray | None
    seconds: float
    settings: dict = field(default_factory=dict)
    extent: tuple[float, float] | None = None
    inside_metal: Any = None

    @property
    def n_elements(self) -> int:
        return int(self.mesh.t.shape[1])

    @property
    def top_area(self) -> float:
        """Area of the top of the box, Å² (the applied flux is eps0 E0 times it)."""
        if self.extent is not None:
            return float(self.extent[0] * self.extent[1])
        return (1.0 if self.quarter else 4.0) * self.width**2

    def apex_vertex(self) -> int:
        """The mesh vertex at the apex (the shapes' poles are geometric vertices)."""
        if self.apex is None:
            raise ConfigError("a flat metal has no apex")
        vertices = self.mesh.p[:, : int(self.mesh.t.max()) + 1]
        distance = np.linalg.norm(vertices.T - self.apex, axis=1)
        k = int(np.argmin(distance))
        if distance[k] > 1e-6 * max(1.0, float(np.abs(self.apex).max())):
            raise RuntimeError(f"no mesh vertex at the apex {self.apex} (closest "
                               f"{distance[k]:.3g} Å away)")
        return k


@contextlib.contextmanager
def _gmsh() -> Iterator[Any]:
    """A quiet, single-threaded gmsh session (gmsh is a process-wide singleton)."""
    require()
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add("vacuum")
        yield gmsh
    finally:
        gmsh.finalize()


def _on_walls(points: np.ndarray, width: float, top: float, quarter: bool) -> np.ndarray:
    """[n] bool: points [3, n] on a wall of the box (not its bottom, which is metal)."""
    tol = 1e-7 * max(width, top)
    x, y, z = points
    low = 0.0 if quarter else -width
    return ((np.abs(x - low) < tol) | (np.abs(x - width) < tol) | (np.abs(y - low) < tol)
            | (np.abs(y - width) < tol) | (np.abs(z - top) < tol))


def _skfem_mesh(gmsh, order: int):
    """The gmsh model's tetrahedra as a scikit-fem mesh (curved MeshTet2 for order 2, the
    edge-midpoint nodes taken from gmsh, i.e. on the true surface)."""
    import skfem

    tags, coords, _ = gmsh.model.mesh.getNodes()
    coords = coords.reshape(-1, 3)
    index = np.zeros(int(tags.max()) + 1, dtype=np.int64)
    index[tags.astype(np.int64)] = np.arange(len(tags))
    types, _, nodes = gmsh.model.mesh.getElements(3)
    width = {4: 4, 11: 10}  # gmsh element type -> nodes (tet4, tet10)
    (k,) = [i for i, t in enumerate(types) if t in width]
    tets = index[nodes[k].astype(np.int64)].reshape(-1, width[types[k]])
    vertices = np.unique(tets[:, :4])
    renumber = np.full(len(coords), -1, dtype=np.int64)
    renumber[vertices] = np.arange(len(vertices))
    linear = skfem.MeshTet(coords[vertices].T.copy(), renumber[tets[:, :4]].T.copy())
    if order == 1:
        return linear
    # gmsh's tet10: nodes 4..9 are the midpoints of edges (0,1), (1,2), (0,2), (0,3),
    # (2,3), (1,3); scikit-fem numbers a MeshTet2's edge nodes after the vertices, in the
    # order of mesh.edges
    n = len(vertices)
    keys, mids = [], []
    for a, b, m in ((0, 1, 4), (1, 2, 5), (0, 2, 6), (0, 3, 7), (2, 3, 8), (1, 3, 9)):
        va, vb = renumber[tets[:, a]], renumber[tets[:, b]]
        keys.append(np.minimum(va, vb) * n + np.maximum(va, vb))
        mids.append(tets[:, m])
    keys_all, first = np.unique(np.concatenate(keys), return_index=True)
    mids_all = np.concatenate(mids)[first]
    curved = skfem.MeshTet2.from_mesh(linear)
    edges = linear.edges.astype(np.int64)  # int32 keys overflow beyond 46,341 vertices
    wanted = np.minimum(edges[0], edges[1]) * n + np.maximum(edges[0], edges[1])
    position = np.searchsorted(keys_all, wanted)
    if not np.array_equal(keys_all[np.minimum(position, len(keys_all) - 1)], wanted):
        raise RuntimeError("gmsh's second-order nodes do not match the mesh edges")
    doflocs = curved.doflocs.copy()
    doflocs[:, n:n + edges.shape[1]] = coords[mids_all[position]].T
    return _straighten_inverted(linear, doflocs, curved.t)


def _straighten_inverted(linear, doflocs: np.ndarray, t: np.ndarray, worst: float = 0.2):
    """The curved mesh, with the edges of every element whose curved map has a Jacobian
    below ``worst`` times its straight one (folded or nearly folded: gmsh's curving of
    tiny elements at a sharp apex can invert one, which ruins the solve) put back on
    their chords; repeated until no element is below."""
    import skfem

    n = linear.p.shape[1]
    chords = linear.p[:, linear.edges].mean(axis=1)
    linear_basis = skfem.Basis(linear, skfem.ElementTetP1())
    straight = np.abs(linear_basis.mapping.detDF(np.zeros((3, 1)))).ravel()
    element = skfem.ElementTetP2()
    # the nodes and the quadrature points
    points = np.hstack([np.asarray(element.doflocs).T, linear_basis.X])
    for _ in range(5):
        mesh = skfem.MeshTet2(doflocs, t)
        jacobian = skfem.Basis(mesh, element).mapping.detDF(points).min(axis=1)
        bad = np.flatnonzero(jacobian < worst * straight)
        if len(bad) == 0:
            return mesh
        for edge in np.unique(linear.t2e[:, bad]):
            doflocs[:, n + edge] = chords[:, edge]
    return skfem.MeshTet2(doflocs, t)


def _generate(gmsh, order: int, width: float, top: float, quarter: bool):
    """Mesh the current gmsh model (sizes already set) at ``order``: the scikit-fem mesh,
    its metal facets and its top facets."""
    gmsh.model.mesh.generate(3)
    if order == 2:
        gmsh.model.mesh.setOrder(2)
    mesh = _skfem_mesh(gmsh, order)
    return (mesh, *_tag_boundaries(mesh, width, top, quarter))


def _tag_boundaries(mesh, width: float, top: float, quarter: bool):
    facets = mesh.boundary_facets()
    middle = mesh.p[:, mesh.facets[:, facets]].mean(axis=1)
    walls = _on_walls(middle, width, top, quarter)
    tol = 1e-7 * max(width, top)
    top_facets = facets[np.abs(middle[2] - top) < tol]
    return facets[~walls], top_facets


def _box(width: float, top: float, quarter: bool):
    import gmsh

    low = 0.0 if quarter else -width
    return gmsh.model.occ.addBox(low, low, 0.0, width - low, width - low, top)


def mesh_emitter(emitter: Emitter, size_apex: float | None = None,
                 size_surface: float | None = None, growth: float = 0.3,
                 size_max: float | None = None, width: float | None = None,
                 top: float | None = None, order: int = 2, quarter: bool = True) -> VacuumMesh:
    """Mesh the vacuum around ``emitter`` (see the module docstring).

    Defaults (measured, BENCHMARKS.md "Finite-element fields"): ``size_apex`` = apex
    radius of curvature / 16, ``size_surface`` = radius / 6, the box ``width`` = 20 x the
    emitter's largest dimension and ``top`` = height + that (a 10x box lowers a
    hemisphere's beta by 0.15 %, a 20x one by 0.04 %), ``size_max`` = width / 6.
    """
    if order not in (1, 2):
        raise ConfigError(f"mesh order {order}: expected 1 or 2")
    start = time.perf_counter()
    scale = max(emitter.height, emitter.radius)
    width = 20.0 * scale if width is None else float(width)
    top = emitter.height + 20.0 * scale if top is None else float(top)
    if width <= emitter.radius or top <= emitter.height:
        raise ConfigError(f"the box (width {width}, top {top} Å) must contain the emitter")
    size_apex = emitter.apex_radius / 16.0 if size_apex is None else float(size_apex)
    size_surface = emitter.radius / 6.0 if size_surface is None else float(size_surface)
    size_max = width / 6.0 if size_max is None else float(size_max)
    apex = np.array([0.0, 0.0, emitter.height])
    with _gmsh() as gmsh:
        occ = gmsh.model.occ
        box = _box(width, top, quarter)
        solids = emitter.add_to_gmsh()
        occ.cut([(3, box)], solids)
        occ.synchronize()
        surfaces = []  # the emitter's: neither the bottom nor a wall (OCC pads boxes)
        tol = 1e-5 * max(width, top)
        for dim, tag in gmsh.model.getEntities(2):
            x0, y0, z0, x1, y1, z1 = gmsh.model.getBoundingBox(dim, tag)
            if z1 > tol and z0 < top - tol and min(x1 - x0, y1 - y0) > tol:
                surfaces.append(tag)
        fields = gmsh.model.mesh.field
        distance = fields.add("Distance")
        fields.setNumbers(distance, "SurfacesList", surfaces)
        fields.setNumber(distance, "Sampling", 60)
        near_apex = fields.add("MathEval")
        fields.setString(near_apex, "F", f"{size_apex} + {growth} * Sqrt(x^2 + y^2 + "
                                         f"(z - {emitter.height})^2)")
        near_surface = fields.add("MathEval")
        fields.setString(near_surface, "F", f"{size_surface} + {growth} * F{distance}")
        sizes = fields.add("Min")
        fields.setNumbers(sizes, "FieldsList", [near_apex, near_surface])
        gmsh.option.setNumber("Mesh.MeshSizeMax", size_max)
        fields.setAsBackgroundMesh(sizes)
        for option in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints",
                       "MeshSizeFromCurvature"):
            gmsh.option.setNumber(f"Mesh.{option}", 0)
        mesh, metal, top_facets = _generate(gmsh, order, width, top, quarter)
    return VacuumMesh(mesh, metal, top_facets, width, top, quarter, apex,
                      time.perf_counter() - start,
                      {"size_apex": size_apex, "size_surface": size_surface,
                       "size_max": size_max, "growth": growth, "order": order})


def mesh_flat(width: float, top: float, size: float, order: int = 2) -> VacuumMesh:
    """The vacuum above a flat metal (z = 0) in a box x, y in [0, width], z in [0, top],
    uniform element ``size`` Å: the field is E0 everywhere (beta = 1)."""
    start = time.perf_counter()
    with _gmsh() as gmsh:
        _box(width, top, True)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", size)
        mesh, metal, top_facets = _generate(gmsh, order, width, top, True)
    return VacuumMesh(mesh, metal, top_facets, width, top, True, None,
                      time.perf_counter() - start, {"size": size, "order": order})


__all__ = ["VacuumMesh", "mesh_emitter", "mesh_flat"]
