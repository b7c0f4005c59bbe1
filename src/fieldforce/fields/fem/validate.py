"""Validation of the finite-element solve on the canonical emitters: the apex field
enhancement factor against the closed form or published value, with mesh convergence.

``validate_emitter(emitter, refine=2)`` solves on the default mesh and on ``refine`` meshes
with the element sizes near the surface halved each time; the result (a dict, the JSON of
``fieldforce field validate``) holds ``beta`` (finest mesh), ``beta_reference``,
``reference``, ``relative_error``, ``n_elements``, ``n_dofs``, ``seconds`` and
``convergence`` (one row per mesh).
"""

from __future__ import annotations

import time

from fieldforce.fields.fem.emitters import Emitter
from fieldforce.fields.fem.laplace import solve_laplace
from fieldforce.fields.fem.mesh import mesh_emitter


def validate_emitter(emitter: Emitter, refine: int = 0, order: int = 2, e0: float = 1.0,
                     growth: float = 0.3, progress=None, keep: bool = False) -> dict:
    """beta of ``emitter`` on the default mesh and ``refine`` finer ones (sizes halved);
    ``progress(row)`` is called after each solve; ``keep``: the finest
    :class:`~fieldforce.fields.fem.laplace.LaplaceSolution` under ``"solution"``."""
    reference, source = emitter.reference()
    rows = []
    failed = None
    start = time.perf_counter()
    for level in range(refine + 1):
        factor = 0.5**level
        began = time.perf_counter()
        try:
            vacuum = mesh_emitter(emitter, size_apex=emitter.apex_radius / 16.0 * factor,
                                  size_surface=emitter.radius / 6.0 * factor,
                                  growth=growth, order=order)
        except RuntimeError as err:  # gmsh at element sizes spanning > ~7 decades
            if level == 0:
                raise
            failed = f"level {level}: meshing failed ({err})"
            break
        solution = solve_laplace(vacuum, e0)
        charge, _ = solution.surface_charge()
        row = {"level": level, "size_apex_A": vacuum.settings["size_apex"],
               "n_elements": vacuum.n_elements, "n_dofs": solution.n_dofs,
               "beta": solution.beta,
               "relative_error": (None if reference is None
                                  else solution.beta / reference - 1.0),
               "charge_ratio": charge / solution.induced_charge_expected(),
               "cg_iterations": solution.iterations,
               "seconds": time.perf_counter() - began,
               "seconds_mesh": vacuum.seconds, **{f"seconds_{k}": v for k, v in
                                                  solution.seconds.items()}}
        rows.append(row)
        if progress is not None:
            progress(row)
    finest = rows[-1]
    return {"shape": emitter.shape, "radius_A": emitter.radius, "height_A": emitter.height,
            "aspect_ratio": emitter.height / emitter.radius, "order": order,
            "beta": finest["beta"], "beta_reference": reference, "reference": source,
            "relative_error": finest["relative_error"], "n_elements": finest["n_elements"],
            "n_dofs": finest["n_dofs"], "charge_ratio": finest["charge_ratio"],
            "seconds": time.perf_counter() - start, "convergence": rows,
            "refinement_failed": failed,
            **({"solution": solution} if keep else {})}


__all__ = ["validate_emitter"]
