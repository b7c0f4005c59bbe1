"""External electric fields for models and molecular dynamics (layer 3, physics kernels).

A field is a callable ``field(positions [N,3] Å, time_fs) -> E [N,3] V/Å``. Models couple to
it through U = U0 - sum_i mu_i.E_i - 1/2 sum_i E_i.alpha_i.E_i with E_i = E(r_i, t) and take
forces by autograd through positions, so every non-uniform field here is a differentiable torch
function of positions (dE/dr exists and is continuous). Static built-in fields are curl-free
(E = -grad phi with a smooth phi), so MD in them conserves energy.

The contract every field (:class:`ExternalField`) provides:

- ``field(positions, time_fs)``: E at the atoms; ``is_uniform`` and, for uniform fields,
  ``uniform_value(time_fs) -> [3]``;
- ``has_potential`` and ``potential(positions, time_fs) -> phi [N] V`` with E = -grad phi,
  differentiable, for models that couple to phi (charge equilibration:
  chi_i -> chi_i + phi(r_i)); True for uniform fields (phi = -E.r, zero at the origin),
  point charges, grids and AnalyticFields given a potential. phi is defined up to a
  constant, which the energy of a neutral system does not see but a charged one's does;
- ``depends_on_time``: False for static fields (results stay valid as time advances), True
  otherwise and by default;
- ``depends_on_atoms`` and ``update(atoms, time_fs) -> bool``: for fields re-solved around
  the atoms (e.g. a finite-element potential around a moving metal tip). The calculator
  calls ``update`` before evaluating at new positions; it returns True when the field
  changed. Between updates the field is a fixed function of position; energy is not
  conserved across a re-solve. False / a no-op for every built-in field.

The details are in the :class:`ExternalField` docstring.

Fields round-trip through YAML-friendly dicts: ``field.to_dict()`` and
``ExternalField.from_config(d, base_dir)``, dispatching on ``d["type"]``.

Modules: ``base`` (the interface, config round trip), ``uniform`` (E(t) the same at
every atom), ``point_charge``, ``gridded`` (B-spline potential on a grid), ``analytic``
(user torch callables, :func:`as_field`); the subpackage ``fem`` (the finite-element
solve around metal emitters: gmsh, scikit-fem, pyamg, the ``fem`` extra; only its
:class:`~fieldforce.fields.fem.coupled.FEMField`, config ``type: fem``, is registered
here, and it imports the extra's packages when it first solves).
"""

from fieldforce.fields.analytic import AnalyticField, as_field
from fieldforce.fields.base import ExternalField
from fieldforce.fields.fem.coupled import FEMField
from fieldforce.fields.gridded import GriddedField
from fieldforce.fields.point_charge import PointChargeField
from fieldforce.fields.uniform import PulseField, RampField, SinusoidalField, UniformField

__all__ = ["AnalyticField", "ExternalField", "FEMField", "GriddedField", "PointChargeField",
           "PulseField", "RampField", "SinusoidalField", "UniformField", "as_field"]
