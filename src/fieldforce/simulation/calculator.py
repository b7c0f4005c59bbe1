"""An ASE calculator for fieldforce models, with an external electric field.

The energy it reports is the electric enthalpy of the model,

    U(R, E) = U0(R) - mu(R).E - 1/2 E.alpha(R).E     (eV)

(for a non-uniform field, each atom couples to the field at its own position), and the
forces are -dU/dr_i by autograd, so they include every field term (DESIGN.md, "Field
coupling by response"). Under a static field, U + kinetic energy is the quantity that
NVE dynamics conserves.

Time
----
A time-dependent field (``field.depends_on_time``: ramp, sinusoid, pulse, a callable of
time) is evaluated at the calculator's ``time_fs``. That attribute is the one place time
comes from:

* setting ``calc.time_fs = t`` (the property) changes the time and drops cached results,
  so the next ``get_*`` call recomputes at ``t``;
* ``calc.advance_time(t)`` changes the time but keeps the results cached for the current
  positions. MD drivers call it before each step: the integrator first re-reads the forces
  of the current positions (computed at the old time, as they should be), then moves the
  atoms, and the new forces are computed at the new time.
  :class:`fieldforce.simulation.md.MDRun` does this.

``atoms.info`` is not read for the time. A field that depends on the atoms themselves
(``field.depends_on_atoms``, e.g. a potential re-solved around a moving metal tip) is
given the atoms and the time (``field.update(atoms, time_fs)``) before every evaluation
at new positions.

Results
-------
What the model declares (:meth:`fieldforce.models.FieldModel.output_specs`), as float64
numpy: ``energy`` and ``free_energy`` (eV, the same number), ``forces`` [N, 3] eV/Å,
``stress`` (Voigt [6] eV/Å³, only for cells periodic in all three directions, when asked
for), every ``property`` and ``component`` output of the family (per structure: its
value for the one structure; per atom: [N, ...]), and with ``per_atom=True`` its
``detail`` outputs (atomic dipoles, polarizabilities, energies). Outputs marked
``periodic_only`` (polarization) appear for periodic cells only; those marked
``on_request`` (Born charges) when asked for (``get_born_charges``, or with every
evaluation while ``compute_born_charges`` is true; a family's own, such as the kernel
heads' ``forces_uncertainty``, with ``get_property(name)``). ``efield`` is the uniform field [3]
V/Å, or the per-atom field [N, 3] V/Å for a non-uniform one.

The response model gives ``dipole`` [3] e·Å (at the applied field), ``polarizability``
[3, 3] e·Å²/V, ``energy_zero_field`` (U0) and ``permanent_dipole``. Latent-charge models
(``family: latent``, DESIGN.md "Latent charges") give ``charges`` [N] e, ``dipole`` [3]
e·Å (isolated: sum q r; periodic: the cell dipole V P on the default branch),
``polarization`` [3] e/Å² and Born charges [N, 3, 3] e (acoustic sum rule on). Their
forces in a uniform field include Z*_i^T E; in a periodic cell that force is not the
gradient of the reported energy U - E.(V P) (see :mod:`fieldforce.models.latent`), so NVE
conserves U + kinetic energy only for isolated systems. A model whose
``field_support`` is ``"uniform"`` refuses non-uniform fields; one whose
``field_support`` is ``"none"`` ignores fields (with a warning).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)
from ase.stress import full_3x3_to_voigt_6_stress

from fieldforce.data.batch import batch_from_atoms
from fieldforce.errors import ConfigError, DomainWarning, FieldforceError
from fieldforce.fields import ExternalField, as_field
from fieldforce.models import FieldModel, evaluate, load_model

__all__ = ["DomainMonitor", "FieldForceCalculator", "StressUnavailableError"]

#: what every fieldforce calculator computes, whatever the model
BASE_PROPERTIES = ["energy", "free_energy", "forces", "stress"]


class StressUnavailableError(FieldforceError, PropertyNotImplementedError):
    """Stress was requested for a structure that is not periodic in all three directions."""


class FieldForceCalculator(Calculator):
    """ASE calculator running a fieldforce model in an external electric field.

    Parameters
    ----------
    model
        a fieldforce model (:class:`~fieldforce.models.FieldModel`) or the path of a model
        file (:func:`fieldforce.models.load_model`). A module is moved to
        ``dtype``/``device`` in place.
    efield
        the external field: ``None`` (no field), a vector [3] V/Å, a function of time
        ``f(time_fs) -> [3]`` V/Å, a function ``f(positions [N, 3] Å, time_fs) -> [N, 3]``
        V/Å (built from torch operations so forces see dE/dr), a field config dict, or an
        :class:`~fieldforce.fields.ExternalField` (see :func:`fieldforce.fields.as_field`).
    time_fs
        initial simulation time in fs (``None`` means 0); see the module docstring.
    per_atom
        also store the model's per-atom ``detail`` outputs (atomic dipoles, ...) in
        ``results``.
    compute_born_charges
        models with charges: also compute ``born_charges`` in every evaluation (extra
        backward passes; free in a periodic cell in a field, whose forces need them).
        An attribute an MD driver may switch on for the steps it writes.
    dtype, device
        precision and device of the model evaluation.
    **kw
        passed to :class:`ase.calculators.calculator.Calculator`.
    """

    implemented_properties = BASE_PROPERTIES  # per instance: what the model declares

    def __init__(self, model: FieldModel | str | Path, efield: Any = None,
                 time_fs: float | None = None, per_atom: bool = False,
                 compute_born_charges: bool = False, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu",
                 **kw: Any) -> None:
        super().__init__(**kw)
        if isinstance(model, (str, Path)):
            model = load_model(model)
        self.dtype, self.device = dtype, torch.device(device)
        self.model = model.to(device=self.device, dtype=dtype)
        self.model.eval()
        self.field: ExternalField | None = as_field(efield)
        support = getattr(model, "field_support", "nonuniform")
        if support == "uniform" and self.field is not None and not self.field.is_uniform:
            raise ConfigError(
                f"the {model.family!r} model supports uniform fields only (its field forces "
                f"Z*^T E assume the same field at every atom); got a non-uniform "
                f"{type(self.field).__name__}")
        if support == "none" and self.field is not None:
            warnings.warn(f"the {model.family!r} model does not couple to electric fields; "
                          "the field is ignored", stacklevel=2)
        self.per_atom = bool(per_atom)
        self.compute_born_charges = bool(compute_born_charges)
        self.has_charges = bool(getattr(model, "has_charges", False))
        # the outputs this calculator reports, from the model's declarations
        self.outputs = [o for o in model.output_specs() if o.name not in BASE_PROPERTIES
                        and (o.role != "detail" or self.per_atom)]
        self.implemented_properties = BASE_PROPERTIES + [o.name for o in self.outputs]
        self._time_fs = 0.0 if time_fs is None else float(time_fs)
        self.domain = DomainMonitor(model)

    # -- time ------------------------------------------------------------------

    @property
    def time_fs(self) -> float:
        """Simulation time (fs) at which a time-dependent field is evaluated."""
        return self._time_fs

    @time_fs.setter
    def time_fs(self, value: float) -> None:
        value = float(value)
        if value != self._time_fs and self.field is not None and self.field.depends_on_time:
            self.reset()
        self._time_fs = value

    def advance_time(self, time_fs: float) -> None:
        """Set the time of the *next* evaluation, keeping the cached results (MD drivers)."""
        self._time_fs = float(time_fs)

    # -- evaluation ------------------------------------------------------------

    def field_value(self, atoms=None) -> np.ndarray:
        """The field now: [3] V/Å if uniform, else [N, 3] V/Å at the atoms (zeros: no field)."""
        atoms = self.atoms if atoms is None else atoms
        if self.field is None:
            return np.zeros(3)
        if self.field.is_uniform:
            return self.field.uniform_value(self.time_fs).detach().cpu().numpy().astype(float)
        positions = torch.as_tensor(atoms.positions, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            return self.field(positions, self.time_fs).cpu().numpy().astype(float)

    def _torch_field(self):
        if self.field is None:
            return None  # the batch's own field: zero
        if self.field.is_uniform and not getattr(self.model, "needs_potential", False):
            return self.field.uniform_value(self.time_fs, dtype=self.dtype, device=self.device)
        return self.field

    def calculate(self, atoms=None, properties=("energy",),
                  system_changes=tuple(all_changes)) -> None:
        """Evaluate the model on ``atoms``; fills ``self.results`` (see the module docstring)."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not bool(np.all(atoms.pbc)):
            raise StressUnavailableError(
                f"stress needs a cell periodic in all three directions, but this structure "
                f"has pbc={atoms.pbc.tolist()}; request energy and forces only")
        if self.field is not None and self.field.depends_on_atoms:
            self.field.update(atoms, self.time_fs)
        check_species = getattr(self.model, "check_species", None)
        if check_species is not None:
            check_species(atoms.numbers)
        batch = batch_from_atoms(atoms, dtype=self.dtype, device=self.device)
        want_born = self.has_charges and ("born_charges" in properties
                                          or self.compute_born_charges)
        # one requested -> all of them (the MD writers fetch them one by one)
        requests = self.model.requestable() if self.model.requestable() & set(
            properties) else set()
        out = evaluate(self.model, batch, field=self._torch_field(), time_fs=self.time_fs,
                       forces=True, stress=want_stress, born_charges=want_born,
                       requests=requests or None)

        def arr(name: str) -> np.ndarray:
            return out[name].detach().cpu().numpy().astype(np.float64)

        energy = float(arr("energy")[0])
        self.results = {"energy": energy, "free_energy": energy, "forces": arr("forces")}
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(arr("stress")[0])
        periodic = bool(np.any(atoms.pbc))
        for spec in self.outputs:
            if spec.name not in out or (spec.periodic_only and not periodic):
                continue
            value = arr(spec.name)
            self.results[spec.name] = value if spec.per_atom else value[0]
        atom_field = arr("atom_field")
        uniform = self.field is None or self.field.is_uniform
        self.results["efield"] = atom_field[0].copy() if uniform and len(atom_field) else (
            atom_field)
        self.domain.check(atom_field, self.results.get("extrapolation"), atoms, self.time_fs)

    def get_polarizability(self, atoms=None) -> np.ndarray:
        """Polarizability [3, 3] e·Å²/V of ``atoms``."""
        return self.get_property("polarizability", atoms)

    def get_born_charges(self, atoms=None) -> np.ndarray:
        """Born effective charges [N, 3, 3] e of ``atoms`` (models with charges)."""
        return self.get_property("born_charges", atoms)


def _when(time_fs: float) -> str:
    """`` at t = 12 fs`` in an MD run; nothing for a static evaluation (a relaxation, a
    NEB), whose clock stays at zero."""
    return f" at t = {time_fs:g} fs" if time_fs else ""


class DomainMonitor:
    """Watches every evaluation for a field or a structure beyond the model's training
    domain (:meth:`fieldforce.models.FieldModel.domain`) and warns once per kind.

    ``messages`` holds the warnings issued (an MD run copies them into its log),
    ``max_field`` (V/Å) and ``max_extrapolation`` the largest values seen, with the time
    and atom of the latter.
    """

    #: relative tolerance on the largest training field (rounding, a field just at it)
    FIELD_TOLERANCE = 0.05

    def __init__(self, model) -> None:
        domain = model.domain() if hasattr(model, "domain") else {}
        self.family = getattr(model, "family", "?")
        self.training_field = domain.get("max_field")
        self.threshold = domain.get("extrapolation_threshold")
        self.max_field, self.max_extrapolation = 0.0, 0.0
        self.worst: dict = {}
        self.messages: list[str] = []
        self._warned: set[str] = set()

    def _warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        self.messages.append(message)
        warnings.warn(message, DomainWarning, stacklevel=4)

    def check(self, atom_field: np.ndarray, extrapolation, atoms, time_fs: float) -> None:
        field = float(np.linalg.norm(atom_field, axis=-1).max()) if len(atom_field) else 0.0
        self.max_field = max(self.max_field, field)
        limit = self.training_field
        if limit is not None and field > limit * (1 + self.FIELD_TOLERANCE) + 1e-9:
            trained = (f"its training data went up to {limit:.3g} V/Å" if limit > 0 else
                       "it was trained at zero field only (its field response is inferred, "
                       "not fitted)")
            ratio = f" ({field / limit:.1f}x)" if limit > 0 else ""
            self._warn("field", f"the field reaches {field:.3g} V/Å{_when(time_fs)}, "
                                f"beyond the {self.family!r} model's training domain: "
                                f"{trained}{ratio}")
        if extrapolation is None or self.threshold is None or not len(extrapolation):
            return
        atom = int(np.argmax(extrapolation))
        worst = float(extrapolation[atom])
        if worst > self.max_extrapolation:
            self.max_extrapolation = worst
            self.worst = {"time_fs": float(time_fs), "atom": atom,
                          "element": atoms.get_chemical_symbols()[atom]}
        if worst > self.threshold:
            self._warn("structure", f"atom {atom} ({atoms.get_chemical_symbols()[atom]})"
                       f"{_when(time_fs)} lies {worst:.3g} training "
                       f"standard deviations outside the range of its environments in the "
                       f"training data (warning above {self.threshold:g}): the "
                       f"{self.family!r} model extrapolates")

    def summary(self) -> dict:
        """The monitor's findings as plain values (for an MD summary)."""
        return {"training_max_field_V_per_A": self.training_field,
                "max_field_V_per_A": self.max_field,
                "extrapolation_threshold": self.threshold,
                "max_extrapolation": self.max_extrapolation, "worst": self.worst or None,
                "warnings": list(self.messages)}
