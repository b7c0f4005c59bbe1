"""User-supplied torch fields (:class:`AnalyticField`) and :func:`as_field`, which turns
whatever a user passes (vector, callable, dict, field) into an ExternalField."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from fieldforce.errors import ConfigError
from fieldforce.fields.base import ExternalField, _check_positions, _vector3
from fieldforce.fields.uniform import UniformField


class AnalyticField(ExternalField):
    """A user torch callable ``function(positions [N,3] Å, time_fs) -> E [N,3] V/Å``.

    It must be built from torch operations on positions for forces to see dE/dr. With
    ``uniform=True`` the function must not depend on positions. ``potential`` is an optional
    callable ``(positions, time_fs) -> phi [N] V``. A Python callable has no config form.
    """

    def __init__(self, function: Callable, uniform: bool = False,
                 potential: Callable | None = None):
        if not callable(function):
            raise ConfigError(f"analytic field function must be callable, got {function!r}")
        self.function, self.uniform, self._potential = function, bool(uniform), potential

    @property
    def is_uniform(self) -> bool:
        return self.uniform

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        _check_positions(positions)
        value = torch.as_tensor(self.function(positions, time_fs), dtype=positions.dtype,
                                device=positions.device)
        if value.shape != positions.shape:
            raise ConfigError(f"analytic field function returned shape {tuple(value.shape)}, "
                              f"expected [N, 3] = {tuple(positions.shape)}")
        return value

    def uniform_value(self, time_fs: float = 0.0, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
        if not self.uniform:
            return super().uniform_value(time_fs, dtype=dtype, device=device)
        return self(torch.zeros(1, 3, dtype=dtype, device=device), time_fs)[0]

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        if self._potential is not None:
            return self._potential(positions, time_fs)
        if self.uniform:  # phi = -E.r
            return -(positions @ self.uniform_value(time_fs, dtype=positions.dtype,
                                                    device=positions.device))
        return super().potential(positions, time_fs)

    def to_dict(self) -> dict:
        raise ConfigError("an AnalyticField wraps a Python callable and cannot be written to a "
                          "config; use a static, ramp, sinusoid, pulse, point_charge or grid field")

    def __repr__(self) -> str:
        return f"AnalyticField({self.function!r}, uniform={self.uniform})"


def _required_positional(function: Callable) -> int | None:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params)


def as_field(value: Any) -> ExternalField | None:
    """Turn what a user passes as a field into an ExternalField.

    - ``None`` -> ``None`` (no field);
    - an ExternalField -> itself; a dict -> ``ExternalField.from_config``;
    - a 3-vector (list, tuple, numpy array, tensor) in V/Å -> UniformField;
    - a callable of one argument ``f(time_fs) -> [3]`` -> a time-dependent uniform field;
    - a callable of two arguments ``f(positions [N,3], time_fs) -> [N,3]`` -> a non-uniform
      AnalyticField.
    """
    if value is None or isinstance(value, ExternalField):
        return value
    if isinstance(value, dict):
        return ExternalField.from_config(value)
    if callable(value):
        nargs = _required_positional(value)
        if nargs == 1:
            def uniform(positions: torch.Tensor, time_fs: float) -> torch.Tensor:
                vector = torch.as_tensor(value(time_fs), dtype=positions.dtype,
                                         device=positions.device)
                return vector.reshape(1, 3).expand(positions.shape[0], 3)

            return AnalyticField(uniform, uniform=True)
        if nargs == 2:
            return AnalyticField(value)
        raise ConfigError(f"a field callable must take (time_fs) or (positions, time_fs), "
                          f"got {value!r} with {nargs} required arguments")
    return UniformField(_vector3(value, "field"))
