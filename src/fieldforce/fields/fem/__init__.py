"""Finite-element electrostatics around metal emitters: Laplace's equation in the vacuum.

The metal is an equipotential (phi = 0 on its surface and on the flat base it stands on);
far above it the field is the applied one, E0 along +z (a Neumann condition
d phi/dz = -E0 on the top of the box); the lateral walls have zero normal field (a
symmetry plane of a periodic array of emitters, or an isolated one when the box is wide).
Then E = -grad phi, the surface charge is sigma = eps0 E.n, and the apex field over E0 is
the field enhancement factor beta.

Modules (scikit-fem for assembly and solve, gmsh for meshing, pyamg for the
preconditioner: the ``fem`` extra, ``pip install 'fieldforce[fem]'``):

- :mod:`~fieldforce.fields.fem.emitters`: the canonical emitter shapes (hemisphere,
  hemi-ellipsoid, hemisphere on a post) and their closed-form or published beta;
- :mod:`~fieldforce.fields.fem.mesh`: the vacuum around a shape meshed with gmsh (graded,
  curved second-order tetrahedra) as a scikit-fem mesh with its metal and top boundaries;
- :mod:`~fieldforce.fields.fem.laplace`: the P2 solve (stiffness assembled in chunks of
  elements; CG with an algebraic multigrid preconditioner), the field at points and
  vertices, surface charges, beta;
- :mod:`~fieldforce.fields.fem.validate`: beta of a canonical shape against its reference,
  with a mesh-convergence table (``fieldforce field validate``);
- :mod:`~fieldforce.fields.fem.atomistic`: the field, induced charges and Maxwell forces
  around an atomistic metal (``fieldforce field solve``): the whole box meshed with
  straight tetrahedra graded from the tip's top facet, the metal a fictitious domain;
- :mod:`~fieldforce.fields.fem.coupled`: :class:`FEMField`, that solve as an MD field
  (``field: {type: fem}``), re-solved when the surface moves.

Units: Å, V, V/Å, e (eps0 = 0.00553 e/(V Å)).
"""

from __future__ import annotations

from fieldforce.errors import ConfigError

#: default growth of an atomistic mesh's surface element size per Å of distance from the
#: tip's top facet (:mod:`~fieldforce.fields.fem.atomistic`): on a 355-atom tip, 3.1x fewer
#: elements than a uniform 0.3 Å surface, the cap's fields 2.1 % RMS from a 0.2 Å mesh's
#: (uniform 0.3 Å: 0.9 %; benchmarks/fem_grading.py). Here, not in ``atomistic``, so the
#: CLI and the MD field read it without importing the meshing code.
APEX_GROWTH = 0.02

#: the packages of the ``fem`` extra: import name -> PyPI name
PACKAGES = {"skfem": "scikit-fem", "gmsh": "gmsh", "pyamg": "pyamg"}


def require() -> None:
    """Raise one ConfigError naming the extra when a FEM package is missing."""
    import importlib.util

    missing = [pypi for name, pypi in PACKAGES.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"finite-element fields need {', '.join(missing)}: install the fem "
                          "extra (pip install 'fieldforce[fem]')")


from fieldforce.fields.fem.emitters import (  # noqa: E402
    SHAPES,
    Emitter,
    beta_hemi_ellipsoid,
    beta_hemisphere_on_post_fit,
)

__all__ = ["PACKAGES", "SHAPES", "Emitter", "beta_hemi_ellipsoid",
           "beta_hemisphere_on_post_fit", "require"]
