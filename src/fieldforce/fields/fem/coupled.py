"""The finite-element field as an MD field: re-solved when the metal's surface has moved.

:class:`FEMField` (config ``{type: fem, e0: 0.5, ...}`` in an ``fieldforce md`` file) is an
:class:`~fieldforce.fields.ExternalField` whose values depend on the atoms
(``depends_on_atoms``). The calculator calls :meth:`FEMField.update` before every
evaluation; the field re-solves Laplace's equation around the atoms
(:func:`~fieldforce.fields.fem.atomistic.solve_atoms`: mesh, P2 solve, the field at each
atom's probe point) when

* the RMS displacement of the surface atoms since the last solve exceeds ``tolerance`` Å,
* or ``every_fs`` fs have passed since it (if set),

and otherwise keeps the last solve. A re-solve reuses the last mesh (only the set of
points held inside the metal follows the atoms) until a surface atom has moved more than
``remesh`` Å from where it was when the mesh was made; meshing is most of a solve's cost
for small structures, and a reused mesh also keeps the mesh's discretisation noise from
changing from one solve to the next. Between solves each atom keeps its own field vector
(the vacuum field just outside the surface near it: what the DFT slabs the models are
trained on were labelled with), so the field is a fixed per-atom value and the model's
forces are those of that fixed field; the field's change with the surface's shape enters
through the re-solves only. Energy is not conserved across a re-solve (the field does
work on the atoms): the history records the enhancement at each solve, and
``rms_displacement`` says how far the surface had moved.

What the model's forces contain: a field-response model trained on DFT forces in a field
has the electrostatic pull on the induced surface charge (the Maxwell stress, 1/2 q_i E_i)
in its field terms, so nothing is added here (:class:`AtomisticField` gives the Maxwell
forces for a field-free potential).

**Restart**: :meth:`FEMField.state` is the active solve (the positions it was made at
and its time); an MD run writes it with every trajectory frame and, resumed from a frame,
gives it back to :meth:`FEMField.restore`, which solves at those same positions: the
resumed run sees the field the uninterrupted one saw.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fieldforce.errors import ConfigError, DataError
from fieldforce.fields.base import ExternalField, _check_positions, _number
from fieldforce.fields.fem import APEX_GROWTH

if TYPE_CHECKING:
    from ase import Atoms


class FEMField(ExternalField):
    """The field around the atoms' metal in an applied field ``e0`` V/Å along +z,
    re-solved as the surface moves (module docstring).

    Parameters
    ----------
    e0
        applied field, V/Å, along +z (out of the top surface).
    gap, metal_radius, size_surface, growth, probe
        as :func:`~fieldforce.fields.fem.atomistic.solve_atoms` (Å; ``growth`` per Å).
    tolerance
        re-solve when the surface atoms' RMS displacement since the last solve exceeds
        this, Å.
    every_fs
        also re-solve after this long, fs (None: only on displacement).
    remesh
        mesh anew when a surface atom has moved more than this since the mesh was made,
        Å (0: at every solve). Default 1 Å: on a 355-atom tip whose surface atoms moved
        by up to 1 Å (thermal-like noise), the reused mesh's fields were as close to a
        fine reference as a fresh mesh's (benchmarks/fem_remesh.py), so only a hop
        (~2.5 Å) needs a new mesh; a lower value re-meshes at 700 K at every solve.
    apex_growth, size_far
        the surface's element size grows by ``apex_growth`` per Å of distance from the
        apex up to ``size_far`` Å (:func:`~fieldforce.fields.fem.atomistic.mesh_box`;
        0: the same size everywhere; default ``fields.fem.APEX_GROWTH``, 0.02).
    """

    config_type = "fem"
    _required = ("e0",)
    _optional = ("gap", "metal_radius", "size_surface", "growth", "probe", "tolerance",
                 "every_fs", "remesh", "apex_growth", "size_far")
    depends_on_time = False
    depends_on_atoms = True

    def __init__(self, e0: float, gap: float = 40.0, metal_radius: float | None = None,
                 size_surface: float = 0.3, growth: float = 0.3, probe: float = 0.5,
                 tolerance: float = 0.1, every_fs: float | None = None,
                 remesh: float = 1.0, apex_growth: float = APEX_GROWTH,
                 size_far: float | None = None):
        self.e0 = _number(e0, "fem field e0")
        self.gap = _number(gap, "fem field gap", positive=True)
        self.metal_radius = (None if metal_radius is None
                             else _number(metal_radius, "fem field metal_radius", True))
        self.size_surface = _number(size_surface, "fem field size_surface", positive=True)
        self.growth = _number(growth, "fem field growth", positive=True)
        self.probe = _number(probe, "fem field probe", positive=True)
        self.tolerance = _number(tolerance, "fem field tolerance", positive=True)
        self.every_fs = None if every_fs is None else _number(every_fs, "fem field every_fs",
                                                              positive=True)
        self.remesh = _number(remesh, "fem field remesh")
        if self.remesh < 0:
            raise ConfigError(f"fem field remesh: expected a distance >= 0 Å, got {remesh!r}")
        self.apex_growth = _number(apex_growth, "fem field apex_growth")
        if self.apex_growth < 0:
            raise ConfigError(f"fem field apex_growth: expected a growth >= 0 per Å, got "
                              f"{apex_growth!r}")
        self.size_far = None if size_far is None else _number(size_far, "fem field size_far",
                                                               positive=True)
        if self.size_far is not None and self.size_far < self.size_surface:
            raise ConfigError(f"fem field size_far: expected at least size_surface "
                              f"({self.size_surface} Å), got {size_far!r}")
        #: the active solve (:class:`~fieldforce.fields.fem.atomistic.AtomisticField`)
        self.result = None
        self.reference: np.ndarray | None = None  # positions of the active solve
        self.mesh_reference: np.ndarray | None = None  # positions the mesh was made at
        self.solved_at_fs = 0.0
        #: one dict per solve: time_fs, beta, apex_height (Å), apex_field (V/Å),
        #: rms_displacement (Å, since the previous solve; None for the first), remeshed,
        #: elements, mesh_seconds, solve_seconds, seconds
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0  # wall time in meshing and solving, all solves

    # -- solving ------------------------------------------------------------------------

    def displacement(self, atoms: Atoms) -> float:
        """RMS displacement of the active solve's surface atoms since it was made, Å."""
        if self.reference is None or len(atoms) != len(self.reference):
            return float("inf")
        moved = atoms.positions[self.result.surface] - self.reference[self.result.surface]
        return float(np.sqrt((moved**2).sum(axis=1).mean()))

    def update(self, atoms: Atoms, time_fs: float = 0.0) -> bool:
        """Re-solve if the surface moved more than ``tolerance`` or ``every_fs`` passed."""
        moved = self.displacement(atoms)
        due = self.every_fs is not None and time_fs - self.solved_at_fs >= self.every_fs
        if moved <= self.tolerance and not due:
            return False
        self._solve(atoms, time_fs, None if self.reference is None else moved)
        return True

    def _mesh_still_fits(self, positions: np.ndarray) -> bool:
        if self.result is None or self.mesh_reference is None \
                or len(positions) != len(self.mesh_reference):
            return False
        surface = self.result.surface
        moved = positions[surface] - self.mesh_reference[surface]
        return bool(np.sqrt((moved**2).sum(axis=1)).max() <= self.remesh)

    def _solve(self, atoms: Atoms, time_fs: float, moved: float | None,
               reuse: bool | None = None) -> None:
        """Solve at ``atoms``; ``reuse`` the last mesh (None: if it still fits)."""
        from ase import Atoms

        from fieldforce.fields.fem import require
        from fieldforce.fields.fem.atomistic import solve_atoms

        require()
        start = time.perf_counter()
        structure = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        if reuse is None:
            reuse = self._mesh_still_fits(atoms.positions)
        result = solve_atoms(structure, self.e0, gap=self.gap, metal_radius=self.metal_radius,
                             size_surface=self.size_surface, growth=self.growth,
                             probe=self.probe,
                             mesh=self.result.solution.vacuum if reuse else None,
                             apex_growth=self.apex_growth, size_far=self.size_far)
        if not reuse:
            self.mesh_reference = atoms.positions.copy()
        seconds = time.perf_counter() - start
        self.result, self.reference = result, atoms.positions.copy()
        self.solved_at_fs = float(time_fs)
        self.seconds += seconds
        self.history.append({
            "time_fs": float(time_fs), "beta": result.beta,
            "apex_height": float(atoms.positions[:, 2].max()),
            "apex_field": float(result.beta * self.e0),
            "rms_displacement": moved, "remeshed": not reuse,
            "elements": int(result.solution.vacuum.mesh.t.shape[1]),
            "mesh_seconds": float(result.seconds["mesh"]),
            "solve_seconds": float(result.seconds["solve"]), "seconds": seconds})

    # -- the field ----------------------------------------------------------------------

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        _check_positions(positions)
        if self.result is None:
            raise DataError("the fem field has not been solved yet: call update(atoms) "
                            "first (the ASE calculator does)")
        if positions.shape[0] != len(self.reference):
            raise DataError(f"the fem field was solved for {len(self.reference)} atoms, "
                            f"got {positions.shape[0]} positions")
        return torch.as_tensor(self.result.fields, dtype=positions.dtype,
                               device=positions.device)

    # -- restart ------------------------------------------------------------------------

    def state(self) -> dict[str, Any] | None:
        """The active solve: the positions it and its mesh were made at, and its time
        (None before the first solve)."""
        if self.reference is None:
            return None
        return {"reference": self.reference.copy(), "solved_at_fs": self.solved_at_fs,
                "mesh_reference": self.mesh_reference.copy()}

    def restore(self, atoms: Atoms, state: dict[str, Any]) -> None:
        """The solve of ``state`` again: the mesh made at its mesh positions, then the
        solve at its positions on that mesh (``atoms`` gives the species and cell)."""
        from ase import Atoms

        reference = np.asarray(state["reference"], dtype=float)
        if reference.shape != (len(atoms), 3):
            raise DataError(f"the fem field state holds {reference.shape[0]} positions for "
                            f"{len(atoms)} atoms")
        meshed = np.asarray(state.get("mesh_reference", reference), dtype=float)
        if not np.array_equal(meshed, reference):
            self._solve(Atoms(atoms.numbers, meshed, cell=atoms.cell, pbc=atoms.pbc),
                        float(state["solved_at_fs"]), None, reuse=False)
            self.history.pop()  # only the mesh of that one counts
        at = Atoms(atoms.numbers, reference, cell=atoms.cell, pbc=atoms.pbc)
        self._solve(at, float(state["solved_at_fs"]), None,
                    reuse=not np.array_equal(meshed, reference))


__all__ = ["FEMField"]
