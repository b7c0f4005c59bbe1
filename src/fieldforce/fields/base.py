"""The field interface (:class:`ExternalField`), its config round trip and input checks.

A field is a callable ``field(positions [N,3] Å, time_fs) -> E [N,3] V/Å``; subclasses
with a config form set ``config_type`` and are then found by
``ExternalField.from_config`` (``{type: ..., ...}`` dicts from YAML).
"""


from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldforce.errors import ConfigError, DataError, UnitError
from fieldforce.units import parse_unit


def _check_positions(positions: Any) -> None:
    if not isinstance(positions, torch.Tensor) or positions.ndim != 2 or positions.shape[1] != 3:
        shape = tuple(positions.shape) if hasattr(positions, "shape") else type(positions).__name__
        raise DataError(f"positions must be a torch tensor of shape [N, 3] in Å, got {shape}")


def _vector3(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.array(value, dtype=float)  # a copy: callers may pass views or read-only arrays
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what}: expected 3 finite numbers, got {value!r}")
    return arr


def _number(value: Any, what: str, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or (positive and x <= 0):
        kind = "a positive number" if positive else "a finite number"
        raise ConfigError(f"{what}: expected {kind}, got {value!r}")
    return x


def _check_keys(d: dict, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    kind = d.get("type")
    # Unknown keys first: a misspelt key is the likeliest reason a required one is missing.
    unknown = [k for k in d if k != "type" and k not in required and k not in optional]
    if unknown:
        raise ConfigError(f"field config of type {kind!r} has unknown key {unknown[0]!r}; "
                          f"allowed keys: {', '.join(required + optional)}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ConfigError(f"field config of type {kind!r} is missing key {missing[0]!r}; "
                          f"required keys: {', '.join(required)}")


def _field_unit_factor(d: dict) -> float:
    """Factor from the config's ``units`` (default V/Å) to V/Å."""
    try:
        return parse_unit(d.get("units", "V/angstrom"), "field").factor
    except UnitError as err:
        raise ConfigError(f"field config key 'units': {err}") from None


def _floats(arr: np.ndarray) -> list[float]:
    return [float(x) for x in arr]


#: config ``type`` -> field class, filled as the field modules are imported.
_REGISTRY: dict[str, type[ExternalField]] = {}


class ExternalField:
    """Base class: an external electric field E(r, t).

    Subclasses implement ``__call__``; uniform ones also ``uniform_value``; those with an
    electrostatic potential also ``potential``.
    """

    config_type: str = ""
    # Config keys: required, optional, and the field vectors that a 'units' key rescales.
    _required: tuple[str, ...] = ()
    _optional: tuple[str, ...] = ()
    _scaled: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.config_type:  # every field with a config form is found by from_config
            _REGISTRY[cls.config_type] = cls

    @property
    def is_uniform(self) -> bool:
        """True when E does not depend on position (it may still depend on time)."""
        return False

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        """Field at each atom: positions [N,3] Å -> E [N,3] V/Å (same dtype/device)."""
        raise NotImplementedError

    def uniform_value(self, time_fs: float = 0.0, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
        """The field vector [3] V/Å of a uniform field at ``time_fs``."""
        raise TypeError(f"{type(self).__name__} is not uniform; evaluate it at positions instead")

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        """Electrostatic potential phi [N] V at positions [N,3] Å, with E = -grad phi."""
        raise NotImplementedError(f"{type(self).__name__} has no electrostatic potential")

    def to_dict(self) -> dict:
        """A YAML-friendly dict (internal units) that ``from_config`` turns back into this field."""
        d: dict[str, Any] = {"type": self.config_type}
        for key in self._required + self._optional:
            value = getattr(self, key, None)
            if value is not None:
                d[key] = _floats(value) if isinstance(value, np.ndarray) else value
        return d

    @classmethod
    def _from_dict(cls, d: dict, base_dir: Path | None) -> ExternalField:
        _check_keys(d, cls._required, cls._optional + (("units",) if cls._scaled else ()))
        kwargs = {k: v for k, v in d.items() if k not in ("type", "units")}
        factor = _field_unit_factor(d) if cls._scaled else 1.0
        for key in cls._scaled:
            kwargs[key] = _vector3(d[key], f"field config key {key!r}") * factor
        return cls(**kwargs)

    @staticmethod
    def from_config(d: dict, base_dir: str | Path | None = None) -> ExternalField:
        """Build a field from a config dict such as ``{type: static, vector: [0, 0, 0.1]}``.

        ``base_dir`` resolves relative file paths (the directory of the YAML file).
        """
        if not isinstance(d, dict) or "type" not in d:
            raise ConfigError(f"a field config must be a mapping with a 'type' key, got {d!r}")
        if d["type"] not in _REGISTRY:
            raise ConfigError(f"unknown field type {d['type']!r}; valid types: "
                              f"{', '.join(_REGISTRY)}")
        return _REGISTRY[d["type"]]._from_dict(d, Path(base_dir) if base_dir is not None
                                               else None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"
