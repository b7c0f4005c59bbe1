"""Laplace's equation in the vacuum: phi = 0 on the metal, the applied field on the top.

Weak form, P2 elements: find phi with phi = 0 on the metal such that for every test v

    int grad(phi).grad(v) dV = int_top (d phi/dn) v dA = -E0 int_top v dA,

the top's outward normal being +z and the field there E = -grad phi = E0 z-hat (E0 signed:
positive points away from the metal, which then carries positive charge). The other walls
have zero normal field (natural condition, nothing to assemble). The system is solved by
conjugate gradients preconditioned with smoothed-aggregation algebraic multigrid (pyamg),
to a relative residual ``rtol``. pyamg estimates its smoothers' spectral radii from a
random start vector (numpy's global generator), so two solves of one system differed by
~1e-12 of the field and a restarted MD run did not reproduce its field: the
preconditioner is built from a fixed seed (:func:`_multigrid_preconditioner`; the
caller's global random state is left as it was).

The stiffness matrix is assembled in chunks of ``ASSEMBLY_CHUNK`` elements: scikit-fem
keeps the basis functions' values and gradients at every quadrature point of the
elements it assembles (~10 kB per curved P2 tetrahedron), which for a whole 10^6-element
mesh is more memory than the matrix itself; in chunks the peak is one chunk's basis plus
the matrix. Straight (affine) meshes use the 4-point rule, exact for the stiffness
of P2 elements (the integrand grad phi_i . grad phi_j is of degree 2); curved ones
scikit-fem's default order.

Derived quantities: E = -grad phi at points (the P2 gradient, discontinuous across
elements, so a vertex's field is the mean over the elements that share it); the surface
charge density on the metal sigma = eps0 E.n (n pointing out of the metal, into the
vacuum), whose integral must be eps0 E0 times the top's area: every field line that
enters through the top ends on the metal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fieldforce.fields.fem.mesh import VacuumMesh
from fieldforce.units import EPSILON0

#: elements per assembly chunk (the peak memory of an assembly is about 2-10 kB times this)
ASSEMBLY_CHUNK = 100_000

#: the reference-element coordinates of a tetrahedron's four vertices (scikit-fem's order)
_TET_VERTICES = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class LaplaceSolution:
    """The potential of one solve.

    Attributes
    ----------
    vacuum
        the :class:`~fieldforce.fields.fem.mesh.VacuumMesh` solved on.
    basis
        a scikit-fem P2 basis of the mesh (its degrees of freedom, element map and
        ``dofs.element_dofs``; it may hold quadrature data of a few elements only);
        ``phi`` [n_dofs] V are its coefficients.
    e0
        the applied field, V/Å (along +z).
    iterations, residual
        of the CG solve (relative residual norm).
    seconds
        {"assemble": s, "solve": s}.
    fixed_dofs, dof_charges
        the degrees of freedom held at phi = 0 and the induced charge on each, e
        (eps0 times its row of the stiffness matrix applied to phi: the consistent
        normal flux; the charges of a mesh that covers the metal live here).
    """

    vacuum: VacuumMesh
    basis: Any
    phi: np.ndarray
    e0: float
    iterations: int
    residual: float
    seconds: dict
    fixed_dofs: np.ndarray | None = None
    dof_charges: np.ndarray | None = None
    _linear: Any = None
    _centroids: Any = None

    @property
    def n_dofs(self) -> int:
        return int(self.basis.N)

    def _interpolate(self, cells: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(phi [n, q] V, grad phi [3, n, q] V/Å) in element ``cells[k]`` at its reference
        coordinates ``x[:, k, :]`` [3, n, q]: the one sum over the P2 basis functions."""
        basis = self.basis
        value = np.zeros(x.shape[1:])
        grad = np.zeros(x.shape)
        for j in range(basis.Nbfun):
            phi_j = basis.elem.gbasis(basis.mapping, x, j, tind=cells)[0]
            coefficient = self.phi[basis.dofs.element_dofs[j, cells]][:, None]
            value += np.asarray(phi_j) * coefficient
            grad += np.asarray(phi_j.grad) * coefficient[None]
        return value, grad

    def _gradient(self, cells: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """grad phi [n, 3] V/Å in element ``cells[k]`` at reference coordinates
        ``reference[:, k]``."""
        return self._interpolate(cells, reference[:, :, None])[1][:, :, 0].T

    def field_at_vertices(self, vertices: np.ndarray) -> np.ndarray:
        """E [n, 3] V/Å at mesh vertices: the mean over the elements sharing each."""
        t = self.vacuum.mesh.t
        out = np.zeros((len(vertices), 3))
        for k, v in enumerate(np.atleast_1d(vertices)):
            local, cells = np.nonzero(t == v)
            out[k] = -self._gradient(cells, _TET_VERTICES[local].T).mean(axis=0)
        return out

    def vertex_fields(self) -> np.ndarray:
        """E [n_vertices, 3] V/Å at every mesh vertex (the mean over its elements)."""
        t = self.vacuum.mesh.t
        cells = np.arange(t.shape[1])
        total = np.zeros((int(t.max()) + 1, 3))
        count = np.zeros(len(total))
        for k in range(4):
            reference = np.repeat(_TET_VERTICES[k][:, None], len(cells), axis=1)
            np.add.at(total, t[k], -self._gradient(cells, reference))
            np.add.at(count, t[k], 1.0)
        return total / count[:, None]

    def write_vtu(self, path) -> None:
        """The mesh with phi (V) and E (V/Å) at its vertices, for ParaView (meshio),
        written atomically."""
        import meshio

        from fieldforce.data.atomic import atomic_path

        t = self.vacuum.mesh.t
        n = int(t.max()) + 1
        field = self.vertex_fields()
        mesh = meshio.Mesh(self.vacuum.mesh.p[:, :n].T, [("tetra", t[:4].T)],
                           point_data={"phi_V": self.phi[:n], "E_V_per_A": field,
                                       "E_magnitude_V_per_A": np.linalg.norm(field, axis=1)})
        with atomic_path(path, ".vtu") as tmp:
            meshio.write(tmp, mesh, file_format="vtu")

    def field(self, points: np.ndarray) -> np.ndarray:
        """E [n, 3] V/Å at points [n, 3] Å inside the vacuum (the P2 field of the element
        containing each)."""
        cells, reference = self._locate(points)
        return -self._gradient(cells, reference)

    def _locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(element [n], reference coordinates [3, n]) of points [n, 3] Å: found on the
        straight-sided mesh of the same vertices, then mapped through the element's own
        (curved) map; a point in the thin sliver between a curved boundary and its
        chord keeps the straight element's coordinates."""
        import skfem

        x = np.atleast_2d(np.asarray(points, dtype=float)).T.copy()
        mesh = self.vacuum.mesh
        if self._linear is None:
            vertices = mesh.p[:, : int(mesh.t.max()) + 1]
            self._linear = skfem.MeshTet(vertices, mesh.t[:4])
        cells = self._find_cells(x)
        reference = self._linear._mapping().invF(x[:, :, None], tind=cells)[:, :, 0]
        if isinstance(mesh, skfem.MeshTet2):  # curved: its own map, by Newton
            try:
                reference = self.basis.mapping.invF(x[:, :, None], tind=cells)[:, :, 0]
            except Exception:  # noqa: BLE001 - Newton fails only in boundary slivers
                pass
        return cells, reference

    def _find_cells(self, x: np.ndarray) -> np.ndarray:
        """The straight element [n] containing each point x [3, n]: each point tested
        against its own k elements with the nearest centroids, k doubled for the points
        not found yet. (scikit-fem's ``element_finder`` tests every point against the
        union of all their candidates, and against every element of the mesh as soon as
        one point misses its 10: 9 of the 40 s of a 150-atom tip's solve went there.)"""
        from scipy.spatial import cKDTree

        linear = self._linear
        if self._centroids is None:
            self._centroids = cKDTree(linear.p[:, linear.t].mean(axis=1).T)
        mapping = linear._mapping()
        n_elements = linear.t.shape[1]
        cells = np.full(x.shape[1], -1, dtype=np.int64)
        todo = np.arange(x.shape[1])
        k = 8
        eps = 1e-10
        most = min(n_elements, 2048)  # a point not among its 2048 nearest is outside
        while todo.size:
            k = min(k, most)
            candidates = self._centroids.query(x[:, todo].T, k)[1].reshape(len(todo), k)
            pairs = np.repeat(x[:, todo], k, axis=1)[:, :, None]  # [3, m k, 1]
            local = mapping.invF(pairs, tind=candidates.ravel())[:, :, 0]
            inside = ((local >= -eps).all(axis=0) & (local.sum(axis=0) <= 1 + eps)
                      ).reshape(len(todo), k)
            hit = inside.any(axis=1)
            cells[todo[hit]] = candidates[hit, inside[hit].argmax(axis=1)]
            todo = todo[~hit]
            if todo.size and k == most:
                raise ValueError(f"{todo.size} point(s) outside the vacuum mesh, e.g. "
                                 f"{np.round(x[:, todo[0]], 3).tolist()} Å")
            k *= 4
        return cells

    def potential(self, points: np.ndarray) -> np.ndarray:
        """phi [n] V at points [n, 3] Å inside the vacuum."""
        return self._value(*self._locate(points))

    def _value(self, cells: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """phi [n] V in element ``cells[k]`` at reference coordinates ``reference[:, k]``."""
        return self._interpolate(cells, reference[:, :, None])[0][:, 0]

    def apex_field(self) -> np.ndarray:
        """E [3] V/Å at the apex vertex."""
        return self.field_at_vertices(np.array([self.vacuum.apex_vertex()]))[0]

    @property
    def beta(self) -> float:
        """Apex field enhancement factor E_z(apex) / E0."""
        return float(self.apex_field()[2] / self.e0)

    def surface_charge(self, intorder: int = 4) -> tuple[float, np.ndarray]:
        """(total, per facet): the induced charge on the metal, e, from sigma = eps0 E.n
        integrated over each metal facet with the P2 field's trace (quadrature of order
        ``intorder`` on the curved face, its points placed in the element's reference
        coordinates directly, so no point has to be located)."""
        from skfem.quadrature import get_quadrature
        from skfem.refdom import RefTri

        mesh, basis = self.vacuum.mesh, self.basis
        facets = self.vacuum.metal_facets
        cells = mesh.f2t[0, facets]
        points, weights = get_quadrature(RefTri, intorder)  # [2, q], sum 1/2
        charge = np.zeros(len(facets))
        # the local vertex of each facet's element that is not on the facet
        vertices = mesh.facets[:, facets]
        on_facet = np.stack([(mesh.t[k, cells][None, :] == vertices).any(axis=0)
                             for k in range(4)])
        opposite_of = np.argmin(on_facet, axis=0)
        for opposite in range(4):
            on = opposite_of == opposite
            if not on.any():
                continue
            a, b, c = (k for k in range(4) if k != opposite)
            va, vb, vc = _TET_VERTICES[a], _TET_VERTICES[b], _TET_VERTICES[c]
            ref = (va[:, None] + np.outer(vb - va, points[0])
                   + np.outer(vc - va, points[1]))  # [3, q]
            elements = cells[on]
            x = np.broadcast_to(ref[:, None, :], (3, len(elements), ref.shape[1])).copy()
            jac = basis.mapping.DF(x, tind=elements)  # [3, 3, n, q]
            t1 = np.einsum("ijnq,j->inq", jac, vb - va)
            t2 = np.einsum("ijnq,j->inq", jac, vc - va)
            normal = np.cross(t1, t2, axis=0)  # |normal| = the face's area scale
            # orient it out of the element (into the metal): away from the opposite vertex
            inward = basis.mapping.F(_TET_VERTICES[opposite][:, None, None]
                                     * np.ones((1, len(elements), 1)), tind=elements)
            face = basis.mapping.F(x, tind=elements)
            sign = np.sign(np.einsum("inq,inq->nq", normal, face - inward))[:, :1]
            grad = self._interpolate(elements, x)[1]
            flux = np.einsum("inq,inq->nq", grad, normal) * sign
            charge[on] = EPSILON0 * flux @ weights
        return float(charge.sum()), charge

    def induced_charge_expected(self) -> float:
        """eps0 E0 A_top, e: the charge Gauss's law requires on the metal."""
        return EPSILON0 * self.e0 * self.vacuum.top_area


def solve_laplace(vacuum: VacuumMesh, e0: float, rtol: float = 1e-10,
                  maxiter: int = 1000) -> LaplaceSolution:
    """Solve for the potential around the metal of ``vacuum`` in the applied field ``e0``
    V/Å (see the module docstring)."""
    import skfem
    from scipy.sparse.linalg import cg

    start = time.perf_counter()
    mesh = vacuum.mesh
    element = skfem.ElementTetP2()
    stiffness, basis = assemble_stiffness(mesh, element)

    @skfem.LinearForm
    def applied(v, w):
        return -e0 * v

    load = applied.assemble(skfem.FacetBasis(mesh, element, facets=vacuum.top_facets))
    fixed = basis.get_dofs(facets=vacuum.metal_facets).all()
    if vacuum.inside_metal is not None:  # a conductor's interior: phi = 0 there too
        inside = np.flatnonzero(vacuum.inside_metal(basis.doflocs))
        fixed = np.union1d(fixed, inside)
    matrix, rhs, _, free = skfem.condense(stiffness, load, D=fixed)
    assembled = time.perf_counter()
    preconditioner = _multigrid_preconditioner(matrix)
    iterations = 0
    scale = float(np.linalg.norm(rhs)) or 1.0

    def count(_):
        nonlocal iterations
        iterations += 1

    solution, info = cg(matrix, rhs, M=preconditioner, rtol=rtol, maxiter=maxiter,
                        callback=count)
    if info != 0:
        raise RuntimeError(f"the Laplace solve did not converge in {maxiter} CG iterations")
    phi = np.zeros(basis.N)
    phi[free] = solution
    residual = float(np.linalg.norm(matrix @ solution - rhs)) / scale
    # the charge on each held degree of freedom: eps0 times its row of K phi, the weak
    # form's normal flux (integral of E.n v over the metal's surface); they sum to the
    # applied flux eps0 E0 A exactly (the rows of K sum to zero)
    reactions = EPSILON0 * (stiffness[fixed] @ phi)
    return LaplaceSolution(vacuum, basis, phi, float(e0), iterations, residual,
                           {"assemble": assembled - start,
                            "solve": time.perf_counter() - assembled},
                           fixed_dofs=fixed, dof_charges=reactions)


def _multigrid_preconditioner(matrix):
    """Smoothed-aggregation AMG preconditioner of ``matrix``, the same for the same
    matrix: pyamg draws the start vectors of its spectral-radius estimates from numpy's
    global generator, seeded here and put back afterwards."""
    import pyamg

    # the legacy global generator is the one pyamg draws from
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(0)  # noqa: NPY002
        return pyamg.smoothed_aggregation_solver(matrix.tocsr()).aspreconditioner()
    finally:
        np.random.set_state(state)  # noqa: NPY002


def assemble_stiffness(mesh, element, chunk: int | None = None):
    """(K [n_dofs, n_dofs] CSR, basis): the Laplace stiffness matrix of ``element`` on
    ``mesh``, assembled ``chunk`` elements at a time (module docstring), and a basis of
    the whole mesh that holds quadrature data of one element only (for the degrees of
    freedom, the element map and interpolation)."""
    import skfem
    from skfem.models.poisson import laplace

    chunk = int(chunk or ASSEMBLY_CHUNK)
    options = {} if isinstance(mesh, skfem.MeshTet2) else {"intorder": 2}
    n = mesh.t.shape[1]
    stiffness = None
    for first in range(0, n, chunk):
        part = skfem.Basis(mesh, element, elements=np.arange(first, min(n, first + chunk)),
                           **options)
        block = laplace.assemble(part).tocsr()
        stiffness = block if stiffness is None else stiffness + block
        del part, block
    return stiffness, skfem.Basis(mesh, element, elements=np.array([0]), **options)


__all__ = ["ASSEMBLY_CHUNK", "LaplaceSolution", "assemble_stiffness", "solve_laplace"]
