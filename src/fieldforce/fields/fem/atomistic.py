"""The field around an atomistic metal surface (a slab with a tip, an adatom, a step).

**The metal's surface** is the boundary of the union of spheres of radius ``metal_radius``
(default: the Wigner-Seitz radius of the element, 1.41 Å for Cu) around the atoms: a
closed, smooth-enough surface about one radius outside the outermost atoms, close to
where a metal's image plane lies (~1 Å outside the atom centres for Cu). It is not
meshed: the **mesh covers the whole box, metal included** (a "fictitious domain"), and
every degree of freedom inside a sphere is held at phi = 0, as in a conductor's
interior. This needs no CAD surface of the atoms, so it never fails on an odd atomic
arrangement (isosurface or alpha-shape meshing of 10^3-10^5 atoms does, and must be
redone whenever an atom moves); the price is that the conductor's boundary is resolved
only to the element size there, so elements are graded from ``size_surface`` (default
0.3 Å) at the surface (at ``metal_radius`` from the nearest **surface atom**: an atom
with fewer neighbours than the bulk) linearly (``growth`` per Å) to ``size_max``, both
into the vacuum and into the metal, where nothing happens. The box has flat walls and the
metal is not a boundary of the mesh, so no element is curved: the mesh is straight
(affine) tetrahedra carrying P2 elements, which costs a fraction of an isoparametric one.

**Grading away from the apex** (``apex_growth`` > 0; default ``APEX_GROWTH`` = 0.02 for
atomistic metals, 0 gives the same size everywhere): the size at the surface itself
grows with the distance d_apex from the top facet (the surface atoms within half a bond of
the highest one: a flat slab is meshed uniformly), ``size_surface`` + ``apex_growth`` x
d_apex, up to ``size_far`` (default 4 ``size_surface``). Only the apex region of a tall
tip needs sub-Å elements; the field on the substrate far from it is weak and smooth, and
resolving its whole surface at the apex's size is what made a 3000-atom tip's mesh 2
million elements.

**The box**: the atoms' cell must have its first two vectors along x and y (an
orthogonal slab, e.g. ``ase.build.fcc100`` or ``fcc111(..., orthogonal=True)``); the box
is x in [0, Lx], y in [0, Ly] with the atoms wrapped into it and their lateral periodic
images part of the metal, z from the lowest atom (the slab's bottom, phi = 0) to
``gap`` Å above the highest atom, where the applied field E0 enters (Neumann). The
lateral walls have zero normal field: a mirror plane of a periodic array of the structure
(exact for mirror-symmetric cells, and the far field of an isolated tip when the cell is
several tip heights wide). A mesh that is periodic laterally would need matching
node sets on opposite walls, which gmsh's callback-sized meshes do not give.

**Charges**: the induced charge on each held degree of freedom is the weak form's normal
flux (:attr:`LaplaceSolution.dof_charges`), assigned to the nearest atom; they sum to
eps0 E0 A exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fieldforce.errors import DataError
from fieldforce.fields.fem import APEX_GROWTH
from fieldforce.fields.fem.mesh import VacuumMesh, _gmsh, _skfem_mesh

#: Wigner-Seitz radii (Å), (3 V_atom / 4 pi)^(1/3) from the elements' bulk densities
WIGNER_SEITZ = {"Cu": 1.41, "W": 1.56, "Au": 1.59, "Ag": 1.60, "Al": 1.58, "Pt": 1.53,
                "Ni": 1.38, "Fe": 1.41, "Mo": 1.55}


@dataclass
class AtomisticMetal:
    """The atoms of a metal in the box of the mesh.

    Attributes
    ----------
    positions
        [N, 3] Å, wrapped laterally into [0, Lx) x [0, Ly).
    extent
        (Lx, Ly), Å.
    bottom, top
        the box along z, Å.
    radius
        the metal spheres' radius, Å.
    surface
        [N] bools: atoms with fewer neighbours than the bulk (and above the bottom layer).
    """

    positions: np.ndarray
    extent: tuple[float, float]
    bottom: float
    top: float
    radius: float
    surface: np.ndarray

    def images(self) -> np.ndarray:
        """[9N, 3]: the atoms and their eight lateral periodic images."""
        lx, ly = self.extent
        shifts = np.array([[i * lx, j * ly, 0.0] for i in (-1, 0, 1) for j in (-1, 0, 1)])
        return (self.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)

    def surface_images(self) -> np.ndarray:
        """[9S, 3]: the surface atoms and their lateral images."""
        lx, ly = self.extent
        shifts = np.array([[i * lx, j * ly, 0.0] for i in (-1, 0, 1) for j in (-1, 0, 1)])
        return (self.positions[self.surface][None] + shifts[:, None, :]).reshape(-1, 3)

    @property
    def bond(self) -> float:
        """~ the metal's nearest-neighbour distance, Å (2 ``radius`` / 1.1)."""
        return 2.0 * self.radius / 1.1

    def top_facet(self) -> np.ndarray:
        """Indices of the surface atoms within half a bond of the highest atom's height:
        a tip's top facet (several atoms at one height, which of them is "the highest"
        being decided by rounding), a flat slab's whole top layer. Where beta is read and
        where the mesh is finest."""
        z = self.positions[:, 2]
        return np.flatnonzero(self.surface & (z > z.max() - 0.5 * self.bond))

    def inside(self, points: np.ndarray) -> np.ndarray:
        """[M] bools for points [3, M] Å: within ``radius`` of an atom (or an image)."""
        from scipy.spatial import cKDTree

        distance, _ = cKDTree(self.images()).query(np.asarray(points).T, k=1)
        return distance <= self.radius


def metal_of(atoms: Atoms, gap: float, metal_radius: float | None = None,
             neighbour_factor: float = 1.2) -> AtomisticMetal:
    """Check the cell and build the :class:`AtomisticMetal` of ``atoms`` (module
    docstring). Surface atoms: fewer neighbours within ``neighbour_factor`` times the
    nearest-neighbour distance than the most coordinated atom."""
    from scipy.spatial import cKDTree

    if len(atoms) < 2:
        raise DataError("an atomistic metal needs at least two atoms")
    cell = atoms.cell.array
    if not (atoms.pbc[0] and atoms.pbc[1]) or abs(cell[0, 1]) > 1e-6 or abs(cell[0, 2]) > 1e-6 \
            or abs(cell[1, 0]) > 1e-6 or abs(cell[1, 2]) > 1e-6:
        raise DataError("the atomistic field solver needs a slab periodic in x and y with "
                        "its first two cell vectors along x and y (e.g. ase.build.fcc100, or "
                        f"fcc111(..., orthogonal=True)); got pbc={atoms.pbc.tolist()} and "
                        f"cell vectors {np.round(cell[:2], 3).tolist()}")
    symbols = set(atoms.get_chemical_symbols())
    if metal_radius is None:
        unknown = sorted(symbols - set(WIGNER_SEITZ))
        if unknown:
            raise DataError(f"no Wigner-Seitz radius tabulated for {', '.join(unknown)}; "
                            "give metal_radius (Å)")
        metal_radius = max(WIGNER_SEITZ[s] for s in symbols)
    extent = (float(cell[0, 0]), float(cell[1, 1]))
    positions = atoms.positions.copy()
    positions[:, 0] %= extent[0]
    positions[:, 1] %= extent[1]
    lx, ly = extent
    shifts = np.array([[i * lx, j * ly, 0.0] for i in (-1, 0, 1) for j in (-1, 0, 1)])
    images = (positions[None] + shifts[:, None]).reshape(-1, 3)
    tree = cKDTree(images)
    nearest = tree.query(positions, k=2)[0][:, 1]
    bond = float(np.median(nearest))
    counts = np.array([len(n) - 1 for n in tree.query_ball_point(positions,
                                                                 neighbour_factor * bond)])
    bottom = float(positions[:, 2].min())
    surface = (counts < counts.max()) & (positions[:, 2] > bottom + 0.5 * bond)
    if not surface.any():
        raise DataError("no surface atoms found (every atom is as coordinated as the most "
                        "coordinated one)")
    top = float(positions[:, 2].max()) + float(gap)
    return AtomisticMetal(positions, extent, bottom, top, float(metal_radius), surface)


def mesh_box(extent: tuple[float, float], bottom: float, top: float, inside,
             distance, size_surface: float = 0.3, growth: float = 0.3,
             size_max: float | None = None, order: int = 2,
             apex: np.ndarray | None = None, settings: dict | None = None,
             apex_growth: float = 0.0, size_far: float | None = None,
             focus: np.ndarray | None = None) -> VacuumMesh:
    """Mesh the whole box x in [0, Lx], y in [0, Ly], z in [bottom, top] for a conductor
    given implicitly: ``inside(points [3, M]) -> [M] bools`` (held at phi = 0, with the
    bottom face) and ``distance(point [3]) -> float``, the distance from a point to the
    conductor's surface, which sets the element size: s(x) + ``growth`` x distance, at
    most ``size_max`` (default: a fifth of the box's smallest side), with the surface size
    s(x) = ``size_surface`` + ``apex_growth`` x (distance from x to the nearest of the
    ``focus`` points [k, 3], default the ``apex``), at most ``size_far`` (default:
    4 ``size_surface``; module docstring). The tetrahedra are straight (``order`` is the
    element order the mesh is for, recorded in the settings)."""
    from scipy.spatial import cKDTree

    start = time.perf_counter()
    lx, ly = extent
    height = top - bottom
    size_max = min(lx, ly, height) / 5.0 if size_max is None else float(size_max)
    size_far = 4.0 * size_surface if size_far is None else float(size_far)
    if apex_growth < 0 or size_far < size_surface:
        raise DataError(f"mesh grading: expected apex_growth >= 0 and size_far >= "
                        f"size_surface ({size_surface} Å), got {apex_growth} and {size_far}")
    if focus is None and apex is not None:
        focus = np.asarray(apex, dtype=float)[None]
    graded = apex_growth > 0 and focus is not None
    focus_tree = cKDTree(np.atleast_2d(focus)) if graded else None

    def size(dim, tag, x, y, z, lc):  # gmsh's size callback, one point at a time
        local = size_surface
        if graded:
            far = float(focus_tree.query((x, y, z), k=1)[0])
            local = min(size_far, size_surface + apex_growth * far)
        return min(size_max, local + growth * distance((x, y, z)))

    with _gmsh() as gmsh:
        gmsh.model.occ.addBox(0.0, 0.0, bottom, lx, ly, height)
        gmsh.model.occ.synchronize()
        gmsh.model.mesh.setSizeCallback(size)
        gmsh.option.setNumber("Mesh.MeshSizeMax", size_max)
        for option in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints",
                       "MeshSizeFromCurvature"):
            gmsh.option.setNumber(f"Mesh.{option}", 0)
        gmsh.model.mesh.generate(3)
        mesh = _skfem_mesh(gmsh, 1)  # straight: P2 lives on the affine elements
    facets = mesh.boundary_facets()
    middle_z = mesh.p[2, mesh.facets[:, facets]].mean(axis=0)
    tol = 1e-7 * max(lx, ly, height)
    bottom_facets = facets[np.abs(middle_z - bottom) < tol]
    top_facets = facets[np.abs(middle_z - top) < tol]
    grading = {"apex_growth": apex_growth, "size_far": size_far} if graded else {}
    return VacuumMesh(mesh, bottom_facets, top_facets, max(lx, ly), top, True, apex,
                      time.perf_counter() - start,
                      {"size_surface": size_surface, "size_max": size_max, "growth": growth,
                       "order": order, **grading, **(settings or {})},
                      extent=(lx, ly), inside_metal=inside)


def mesh_atoms(atoms: Atoms, gap: float = 40.0, metal_radius: float | None = None,
               size_surface: float = 0.3, growth: float = 0.3, size_max: float | None = None,
               order: int = 2, apex_growth: float = APEX_GROWTH,
               size_far: float | None = None) -> VacuumMesh:
    """Mesh the box of ``atoms`` (module docstring): ``gap`` Å of vacuum above the highest
    atom, elements from ``size_surface`` at the metal's surface (``metal_radius`` from
    the nearest surface atom) growing by ``growth`` per Å of distance from it, up to
    ``size_max`` (default: a fifth of the box's smallest side); with ``apex_growth`` > 0
    the surface size itself grows away from the apex, up to ``size_far``."""
    return mesh_metal(metal_of(atoms, gap, metal_radius), size_surface, growth, size_max,
                      order, apex_growth, size_far)


def mesh_metal(metal: AtomisticMetal, size_surface: float = 0.3, growth: float = 0.3,
               size_max: float | None = None, order: int = 2,
               apex_growth: float = APEX_GROWTH, size_far: float | None = None) -> VacuumMesh:
    """:func:`mesh_atoms` for a metal already built by :func:`metal_of`."""
    from scipy.spatial import cKDTree

    tree = cKDTree(metal.surface_images())
    radius = metal.radius

    def distance(point) -> float:
        return abs(tree.query(point, k=1)[0] - radius)

    apex = metal.positions[np.argmax(metal.positions[:, 2])] + [0.0, 0.0, radius]
    # grading starts from the whole top facet (where beta is read), so a flat slab, all of
    # whose top layer is "the apex", is meshed uniformly, and a tip's top facet finest
    facet = metal.positions[metal.top_facet()] + [0.0, 0.0, radius]
    return mesh_box(metal.extent, metal.bottom, metal.top, metal.inside, distance,
                    size_surface, growth, size_max, order, apex,
                    {"metal_radius": radius,
                     "gap": metal.top - float(metal.positions[:, 2].max())},
                    apex_growth, size_far, focus=facet)


def atom_charges(solution, atoms: Atoms, neighbours: int = 6) -> np.ndarray:
    """[N] e: the induced charge of every held degree of freedom (its normal flux), shared
    among its ``neighbours`` nearest surface atoms with weights exp(-((d - d_min)/l)²), l
    half the nearest-neighbour distance (a partition of unity, so the sum stays eps0 E0 A;
    giving each to its single nearest atom leaves the mesh's irregularity in the charges,
    +-8 % between equivalent atoms of a flat surface at 0.5 Å elements). Atoms that are
    not surface atoms get none."""
    return metal_charges(solution, metal_of(atoms, solution.vacuum.settings["gap"],
                                            solution.vacuum.settings["metal_radius"]),
                         neighbours)


def metal_charges(solution, metal: AtomisticMetal, neighbours: int = 6) -> np.ndarray:
    """:func:`atom_charges` for a metal already built by :func:`metal_of`."""
    from scipy.spatial import cKDTree

    everything = cKDTree(metal.images())
    length = 0.5 * float(np.median(everything.query(metal.positions, k=2)[0][:, 1]))
    # the charge lives on the surface: shared among surface atoms (their images too)
    owners = np.flatnonzero(metal.surface)
    tree = cKDTree(metal.surface_images())
    locations = solution.basis.doflocs[:, solution.fixed_dofs].T
    distance, index = tree.query(locations, k=min(neighbours, 9 * len(owners)))
    weights = np.exp(-((distance - distance[:, :1]) / length) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.bincount(owners[index % len(owners)].ravel(),
                       weights=(weights * solution.dof_charges[:, None]).ravel(),
                       minlength=len(metal.positions))




@dataclass
class AtomisticField:
    """The solved field around an atomistic metal (:func:`solve_atoms`).

    Attributes
    ----------
    fields
        [N, 3] V/Å: the field each atom is given. A surface atom's is the field at its
        probe point, ``probe`` Å outside the metal's surface along its outward normal,
        averaged over a hexagon of half a bond around it (the vacuum field just above
        it, what a DFT slab's atoms in a field are labelled with); every other atom gets
        its nearest surface atom's, so a flat slab's atoms
        all get E0, as in the training data of the field-response models.
    charges
        [N] e, the induced charge on the surface atoms (:func:`atom_charges`).
    maxwell_forces
        [N, 3] eV/Å, 1/2 q_i E_i: the pull of the field on the induced charge, for a
        field-free potential (a DFT-trained field-response model already has it in its
        field terms, which reproduce the DFT forces in a field: do not add it there).
    surface, normals
        [N] bools, [N, 3] outward unit normals (zero for non-surface atoms).
    beta
        the apex field enhancement: the largest probe field along z, over E0, among the
        surface atoms within half a bond of the highest atom's height.
    """

    atoms: Atoms
    e0: float
    solution: object
    fields: np.ndarray
    charges: np.ndarray
    maxwell_forces: np.ndarray
    surface: np.ndarray
    normals: np.ndarray
    beta: float
    seconds: dict


def outward_normals(metal: AtomisticMetal) -> np.ndarray:
    """[N, 3]: each surface atom's outward unit normal, away from its neighbours' centroid
    within two nearest-neighbour distances (+z where they balance); zero for the others."""
    from scipy.spatial import cKDTree

    images = metal.images()
    tree = cKDTree(images)
    bond = float(np.median(tree.query(metal.positions, k=2)[0][:, 1]))
    normals = np.zeros_like(metal.positions)
    for i in np.flatnonzero(metal.surface):
        neighbours = images[tree.query_ball_point(metal.positions[i], 2.0 * bond)]
        direction = metal.positions[i] - neighbours.mean(axis=0)
        norm = np.linalg.norm(direction)
        normals[i] = direction / norm if norm > 1e-3 * bond else [0.0, 0.0, 1.0]
    return normals


def solve_atoms(atoms: Atoms, e0: float, gap: float = 40.0, metal_radius: float | None = None,
                size_surface: float = 0.3, growth: float = 0.3, probe: float = 0.5,
                mesh: VacuumMesh | None = None, **mesh_options) -> AtomisticField:
    """Mesh, solve and read off the field, charges and forces of ``atoms`` in the applied
    field ``e0`` V/Å along +z (see :class:`AtomisticField`).

    ``mesh``: the mesh of an earlier solve of nearly the same atoms (the result's
    ``solution.vacuum``), reused instead of meshing anew: only the set of degrees of
    freedom held inside the metal follows the atoms. Right while the atoms have moved
    much less than the elements grow over (``size_surface`` + ``growth`` x distance):
    the caller decides (:class:`~fieldforce.fields.fem.coupled.FEMField` re-meshes when a
    surface atom has moved more than ``remesh`` Å)."""
    import dataclasses

    from scipy.spatial import cKDTree

    from fieldforce.fields.fem.laplace import solve_laplace

    start = time.perf_counter()
    metal = metal_of(atoms, gap, metal_radius)
    if mesh is None:
        vacuum = mesh_metal(metal, size_surface, growth, **mesh_options)
    else:
        if mesh.extent is None or not np.allclose(mesh.extent, metal.extent):
            raise DataError("the mesh to reuse is not of this cell: mesh afresh")
        vacuum = dataclasses.replace(mesh, inside_metal=metal.inside, seconds=0.0)
    meshed = time.perf_counter()
    solution = solve_laplace(vacuum, e0)
    solved = time.perf_counter()
    normals = outward_normals(metal)
    surface = np.flatnonzero(metal.surface)
    points = metal.positions[surface] + (metal.radius + probe) * normals[surface]
    # a probe in a hollow can land in a neighbour's sphere: push it out along the normal
    for _ in range(20):
        buried = metal.inside(points.T)
        if not buried.any():
            break
        points[buried] += 0.25 * normals[surface][buried]
    # the mean over a hexagon of radius half a bond around each probe point, in the plane
    # normal to n: the union of spheres is corrugated on the atomic scale (a single
    # point above an atom reads 7 % more than E0 on a flat Cu(100) slab, one above a
    # hollow less), the local field of a tip varies on the tip's scale
    bond = metal.bond
    tangent = np.cross(normals[surface], [0.0, 0.0, 1.0])
    flat = np.linalg.norm(tangent, axis=1) < 1e-6
    tangent[flat] = [1.0, 0.0, 0.0]
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    other = np.cross(normals[surface], tangent)
    angles = np.arange(6) * np.pi / 3
    offsets = [np.zeros_like(points)] + [0.5 * bond * (np.cos(t) * tangent + np.sin(t) * other)
                                         for t in angles]
    samples = np.concatenate([points + offset for offset in offsets])
    samples[:, 0] %= metal.extent[0]  # near a wall: the periodic image
    samples[:, 1] %= metal.extent[1]
    samples[:, 2] = np.maximum(samples[:, 2], metal.bottom + 1e-6)
    fields = np.zeros_like(metal.positions)
    fields[surface] = solution.field(samples).reshape(len(offsets), len(surface), 3).mean(0)
    others = np.flatnonzero(~metal.surface)
    if len(others):
        tree = cKDTree(metal.surface_images())
        nearest = tree.query(metal.positions[others], k=1)[1] % len(surface)
        fields[others] = fields[surface][nearest]
    probed = time.perf_counter()
    charges = metal_charges(solution, metal)
    # the apex: the strongest field along z on the top facet
    beta = float(fields[metal.top_facet(), 2].max() / e0) if e0 else float("nan")
    return AtomisticField(atoms, float(e0), solution, fields, charges,
                          0.5 * charges[:, None] * fields, metal.surface, normals, beta,
                          {"mesh": meshed - start, "solve": solved - meshed,
                           "probes": probed - solved, "charges": time.perf_counter() - probed,
                           "total": time.perf_counter() - start})


__all__ = ["APEX_GROWTH", "WIGNER_SEITZ", "AtomisticField", "AtomisticMetal", "atom_charges",
           "mesh_atoms", "mesh_box", "mesh_metal", "metal_charges", "metal_of", "outward_normals",
           "solve_atoms"]
