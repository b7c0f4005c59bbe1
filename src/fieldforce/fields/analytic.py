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
    callable ``(positions, time_fs) -> phi [N] V`` with E = -grad phi (not checked); without
    it a uniform field still has phi = -E.r and a non-uniform one has no potential
    (``has_potential`` False). ``depends_on_time`` defaults to True because a user callable
    may use its time argument; pass False for a static function, so results are reused
    across time steps. A Python callable has no config form.
    """

    def __init__(self, function: Callable, uniform: bool = False,
                 potential: Callable | None = None, depends_on_time: bool = True):
        if not callable(function):
            raise ConfigError(f"analytic field function must be callable, got {function!r}")
        if potential is not None and not callable(potential):
            raise ConfigError(f"analytic field potential must be callable, got {potential!r}")
        self.function, self.uniform, self._potential = function, bool(uniform), potential
        self.depends_on_time = bool(depends_on_time)

    @property
    def is_uniform(self) -> bool:
        return self.uniform

    @property
    def has_potential(self) -> bool:
        return self._potential is not None or self.uniform

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
            _check_positions(positions)
            phi = torch.as_tensor(self._potential(positions, time_fs), dtype=positions.dtype,
                                  device=positions.device)
            if phi.shape != positions.shape[:1]:
                raise ConfigError(f"analytic field potential returned shape "
                                  f"{tuple(phi.shape)}, expected [N] = ({positions.shape[0]},)")
            return phi
        if self.uniform:  # phi = -E.r
            return -(positions @ self.uniform_value(time_fs, dtype=positions.dtype,
                                                    device=positions.device))
        return super().potential(positions, time_fs)

    def to_dict(self) -> dict:
        raise ConfigError("an AnalyticField wraps a Python callable and cannot be written to a "
                          "config; use a static, ramp, sinusoid, pulse, point_charge, grid or "
                          "fem field")

    def __repr__(self) -> str:
        return (f"AnalyticField({self.function!r}, uniform={self.uniform}, "
                f"potential={self._potential!r}, depends_on_time={self.depends_on_time})")


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
    - a callable of one argument ``f(time_fs) -> [3]`` -> a time-dependent uniform
      AnalyticField (``depends_on_time`` True, potential -E(t).r);
    - a callable of two arguments ``f(positions [N,3], time_fs) -> [N,3]`` -> a non-uniform
      AnalyticField (``depends_on_time`` True, no potential); build an AnalyticField directly
      to give a potential or declare it static.
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

            return AnalyticField(uniform, uniform=True, depends_on_time=True)
        if nargs == 2:
            return AnalyticField(value, depends_on_time=True)
        raise ConfigError(f"a field callable must take (time_fs) or (positions, time_fs), "
                          f"got {value!r} with {nargs} required arguments")
    return UniformField(_vector3(value, "field"))
