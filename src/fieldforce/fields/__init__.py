"""External electric fields for models and molecular dynamics.

A field is a callable ``field(positions [N,3] Å, time_fs) -> E [N,3] V/Å``. Models couple to
it through U = U0 - sum_i mu_i.E_i - 1/2 sum_i E_i.alpha_i.E_i with E_i = E(r_i, t) and take
forces by autograd through positions, so every non-uniform field here is a differentiable torch
function of positions (dE/dr exists and is continuous). Static non-uniform fields are curl-free
(E = -grad phi with a smooth phi), so MD in them conserves energy.

Fields round-trip through YAML-friendly dicts: ``field.to_dict()`` and
``ExternalField.from_config(d, base_dir)``, dispatching on ``d["type"]``.

Modules: ``base`` (the interface, config round trip), ``uniform`` (E(t) the same at
every atom), ``point_charge``, ``gridded`` (B-spline potential on a grid), ``analytic``
(user torch callables, :func:`as_field`).
"""

from fieldforce.fields.analytic import AnalyticField, as_field
from fieldforce.fields.base import ExternalField
from fieldforce.fields.gridded import GriddedField
from fieldforce.fields.point_charge import PointChargeField
from fieldforce.fields.uniform import PulseField, RampField, SinusoidalField, UniformField

__all__ = ["AnalyticField", "ExternalField", "GriddedField", "PointChargeField", "PulseField",
           "RampField", "SinusoidalField", "UniformField", "as_field"]
