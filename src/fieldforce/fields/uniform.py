"""Fields that are the same at every atom, E = E(t): static, ramp, sinusoid, pulse.

All have the potential phi = -E(t).r, zero at the Cartesian origin (see the gauge note in
:class:`~fieldforce.fields.base.ExternalField`); only the static one has
``depends_on_time`` False.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fieldforce.errors import ConfigError
from fieldforce.fields.base import ExternalField, _check_positions, _number, _vector3


class _UniformInSpace(ExternalField):
    """Shared machinery of fields that are the same at every atom, E = E(t)."""

    has_potential = True

    @property
    def is_uniform(self) -> bool:
        return True

    def vector_at(self, time_fs: float) -> np.ndarray:
        """E(t) [3] V/Å as float64 numpy."""
        raise NotImplementedError

    def uniform_value(self, time_fs: float = 0.0, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
        return torch.as_tensor(self.vector_at(float(time_fs)), dtype=dtype, device=device)

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        # dE/dr = 0, so the result is not connected to the positions' autograd graph.
        _check_positions(positions)
        value = self.uniform_value(time_fs, dtype=positions.dtype, device=positions.device)
        return value.expand(positions.shape[0], 3).clone()

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        """phi = -E(t).r [N] V, zero at the Cartesian origin.

        The energy of a neutral system in it does not depend on that choice of origin; the
        energy of a charged system (total charge Q) shifts by Q E.d if the zero moves to d.
        """
        _check_positions(positions)
        return -(positions @ self.uniform_value(time_fs, dtype=positions.dtype,
                                                device=positions.device))


class UniformField(_UniformInSpace):
    """A static uniform field ``vector`` [3] V/Å."""

    config_type = "static"
    _required = _scaled = ("vector",)
    depends_on_time = False

    def __init__(self, vector: Any):
        self.vector = _vector3(vector, "uniform field vector")

    def vector_at(self, time_fs: float) -> np.ndarray:
        return self.vector.copy()


class RampField(_UniformInSpace):
    """Linear ramp from ``start`` to ``end`` [3] V/Å between start_fs and start_fs + duration_fs.

    The field is ``start`` before the ramp and ``end`` after it.
    """

    config_type = "ramp"
    _required, _optional, _scaled = ("start", "end", "duration_fs"), ("start_fs",), ("start", "end")
    depends_on_time = True

    def __init__(self, start: Any, end: Any, duration_fs: float, start_fs: float = 0.0):
        self.start = _vector3(start, "ramp start")
        self.end = _vector3(end, "ramp end")
        self.duration_fs = _number(duration_fs, "ramp duration_fs", positive=True)
        self.start_fs = _number(start_fs, "ramp start_fs")

    def vector_at(self, time_fs: float) -> np.ndarray:
        s = min(max((time_fs - self.start_fs) / self.duration_fs, 0.0), 1.0)
        return (1.0 - s) * self.start + s * self.end


def _period(period_fs: Any, frequency_thz: Any, what: str) -> float:
    if (period_fs is None) == (frequency_thz is None):
        raise ConfigError(f"{what}: give exactly one of period_fs or frequency_thz")
    if period_fs is not None:
        return _number(period_fs, f"{what} period_fs", positive=True)
    return 1000.0 / _number(frequency_thz, f"{what} frequency_thz", positive=True)  # 1 THz = 1/ps


class SinusoidalField(_UniformInSpace):
    """E(t) = amplitude * sin(2 pi t / period_fs + phase); amplitude [3] V/Å, phase in radians.

    Give the period in fs or the frequency in THz (period_fs = 1000 / frequency_thz).
    """

    config_type = "sinusoid"
    _required, _scaled = ("amplitude",), ("amplitude",)
    _optional = ("period_fs", "frequency_thz", "phase")
    depends_on_time = True

    def __init__(self, amplitude: Any, period_fs: float | None = None,
                 frequency_thz: float | None = None, phase: float = 0.0):
        self.amplitude = _vector3(amplitude, "sinusoid amplitude")
        self.period_fs = _period(period_fs, frequency_thz, "sinusoid")
        self.phase = _number(phase, "sinusoid phase")

    def vector_at(self, time_fs: float) -> np.ndarray:
        return self.amplitude * math.sin(2.0 * math.pi * time_fs / self.period_fs + self.phase)


class PulseField(_UniformInSpace):
    """Gaussian pulse E(t) = A exp(-(t - t0)^2 / (2 w^2)) [cos(2 pi (t - t0) / T + phase)].

    ``width_fs`` w is the standard deviation of the envelope; the carrier cosine is present
    only when ``period_fs`` T is given. Amplitude [3] V/Å.
    """

    config_type = "pulse"
    _required, _scaled = ("amplitude", "center_fs", "width_fs"), ("amplitude",)
    _optional = ("period_fs", "phase")
    depends_on_time = True

    def __init__(self, amplitude: Any, center_fs: float, width_fs: float,
                 period_fs: float | None = None, phase: float = 0.0):
        self.amplitude = _vector3(amplitude, "pulse amplitude")
        self.center_fs = _number(center_fs, "pulse center_fs")
        self.width_fs = _number(width_fs, "pulse width_fs", positive=True)
        self.period_fs = None if period_fs is None else _number(period_fs, "pulse period_fs",
                                                                positive=True)
        self.phase = _number(phase, "pulse phase")

    def vector_at(self, time_fs: float) -> np.ndarray:
        dt = time_fs - self.center_fs
        scale = math.exp(-0.5 * (dt / self.width_fs) ** 2)
        if self.period_fs is not None:
            scale *= math.cos(2.0 * math.pi * dt / self.period_fs + self.phase)
        return self.amplitude * scale
