"""The static field of a (softened) point charge: a simple analytic non-uniform field."""

from __future__ import annotations

from typing import Any

import torch

from fieldforce.fields.base import ExternalField, _check_positions, _number, _vector3
from fieldforce.units import COULOMB_CONSTANT


class PointChargeField(ExternalField):
    """Static field of a point charge ``charge`` (e) at ``center`` [3] Å.

    phi = k_e q / sqrt(|r - c|^2 + s^2) and E = k_e q (r - c) / (|r - c|^2 + s^2)^(3/2), with
    the Plummer ``softening`` s (Å) keeping both finite at the charge; E = -grad phi exactly.
    phi vanishes far from the charge. Static: ``depends_on_time`` is False.
    """

    config_type = "point_charge"
    _required, _optional = ("charge", "center"), ("softening",)
    depends_on_time = False
    has_potential = True

    def __init__(self, charge: float, center: Any, softening: float = 0.0):
        self.charge = _number(charge, "point charge charge")
        self.center = _vector3(center, "point charge center")
        self.softening = _number(softening, "point charge softening")

    def _offsets(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_positions(positions)
        d = positions - torch.as_tensor(self.center, dtype=positions.dtype,
                                        device=positions.device)
        return d, (d * d).sum(-1) + self.softening**2

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        d, r2 = self._offsets(positions)
        return COULOMB_CONSTANT * self.charge * d / r2.pow(1.5).unsqueeze(-1)

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        return COULOMB_CONSTANT * self.charge / self._offsets(positions)[1].sqrt()
