"""External electric fields for models and molecular dynamics.

A field is a callable ``field(positions [N,3] Å, time_fs) -> E [N,3] V/Å``. Models couple to
it through U = U0 - sum_i mu_i.E_i - 1/2 sum_i E_i.alpha_i.E_i with E_i = E(r_i, t) and take
forces by autograd through positions, so every non-uniform field here is a differentiable torch
function of positions (dE/dr exists and is continuous). Static non-uniform fields are curl-free
(E = -grad phi with a smooth phi), so MD in them conserves energy.

Fields round-trip through YAML-friendly dicts: ``field.to_dict()`` and
``ExternalField.from_config(d, base_dir)``, dispatching on ``d["type"]``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldforce.errors import ConfigError, DataError, UnitError
from fieldforce.units import COULOMB_CONSTANT, parse_unit


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
        registry = {c.config_type: c for c in (UniformField, RampField, SinusoidalField,
                                                PulseField, PointChargeField, GriddedField)}
        if d["type"] not in registry:
            raise ConfigError(f"unknown field type {d['type']!r}; valid types: "
                              f"{', '.join(registry)}")
        return registry[d["type"]]._from_dict(d, Path(base_dir) if base_dir is not None else None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class _UniformInSpace(ExternalField):
    """Shared machinery of fields that are the same at every atom, E = E(t)."""

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
        """phi = -E.r [N] V (zero at the origin)."""
        _check_positions(positions)
        return -(positions @ self.uniform_value(time_fs, dtype=positions.dtype,
                                                device=positions.device))


class UniformField(_UniformInSpace):
    """A static uniform field ``vector`` [3] V/Å."""

    config_type = "static"
    _required = _scaled = ("vector",)

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


class PointChargeField(ExternalField):
    """Static field of a point charge ``charge`` (e) at ``center`` [3] Å.

    phi = k_e q / sqrt(|r - c|^2 + s^2) and E = k_e q (r - c) / (|r - c|^2 + s^2)^(3/2), with
    the Plummer ``softening`` s (Å) keeping both finite at the charge; E = -grad phi exactly.
    """

    config_type = "point_charge"
    _required, _optional = ("charge", "center"), ("softening",)

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


def _spline_prefilter(n: int) -> np.ndarray:
    """Matrix P [n+2, n] mapping samples to cubic B-spline coefficients c_{-1..n}.

    Rows: interpolation (c_{k-1} + 4 c_k + c_{k+1}) / 6 = phi_k, and the not-a-knot end
    conditions (third derivative continuous at the second and second-last knots), which keep
    the interpolant fourth-order accurate up to the grid edges, unlike natural end conditions.
    """
    m = np.zeros((n + 2, n + 2))
    for k in range(n):
        m[k, k:k + 3] = (1 / 6, 4 / 6, 1 / 6)
    m[n, 0:5] = (1, -4, 6, -4, 1)
    m[n + 1, n - 3:n + 2] = (1, -4, 6, -4, 1)
    return np.linalg.inv(m)[:, :n]


def _bspline_basis(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform cubic B-spline weights and their t-derivatives, t [N] -> [N, 4] each."""
    t2, t3, s = t * t, t * t * t, 1.0 - t
    w = torch.stack([s**3, 3 * t3 - 6 * t2 + 4, -3 * t3 + 3 * t2 + 3 * t + 1, t3], -1) / 6
    dw = torch.stack([-(s**2), 3 * t2 - 4 * t, -3 * t2 + 2 * t + 1, t2], -1) / 2
    return w, dw


class GriddedField(ExternalField):
    """Static non-uniform field from the potential phi (V) on a regular, axis-aligned 3D grid.

    Grid point (i, j, k) sits at ``origin + (i, j, k) * spacing`` (Å). phi is interpolated by
    a tricubic B-spline (C2, not-a-knot ends), and E = -grad of that interpolant, so E is
    exactly curl-free (energy is conserved in MD) and dE/dr is continuous (forces on dipoles
    are continuous). ``outside="error"`` raises DataError for an atom outside the grid;
    ``"clamp"`` evaluates at the nearest point of the grid box (there E is not curl-free).
    """

    config_type = "grid"
    def __init__(self, origin: Any, spacing: Any, potential_grid: Any, outside: str = "error",
                 source: str | None = None):
        self.origin = _vector3(origin, "grid origin")
        spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
        self.spacing = _vector3(spacing, "grid spacing")
        if np.any(self.spacing <= 0):
            raise DataError(f"grid spacing must be positive in Å, got {_floats(self.spacing)}",
                            path=source, key="spacing")
        phi = np.asarray(potential_grid, dtype=float)
        if phi.ndim != 3 or min(phi.shape) < 4 or not np.all(np.isfinite(phi)):
            raise DataError(f"potential must be a finite [nx, ny, nz] array in V with at least "
                            f"4 points per axis, got shape {phi.shape}", path=source,
                            key="potential")
        if outside not in ("error", "clamp"):
            raise ConfigError(f"grid field 'outside' must be 'error' or 'clamp', got {outside!r}")
        self.potential_grid, self.outside, self.source = phi, outside, source
        coeffs = phi
        for axis, n in enumerate(phi.shape):
            coeffs = np.moveaxis(np.tensordot(_spline_prefilter(n), coeffs, axes=([1], [axis])),
                                 0, axis)
        self._coeffs = torch.as_tensor(coeffs)
        self._cache: dict[tuple, torch.Tensor] = {}

    @classmethod
    def from_npz(cls, path: str | Path, outside: str = "error") -> GriddedField:
        """Load arrays ``origin`` [3] Å, ``spacing`` [3] Å, ``potential`` [nx,ny,nz] V."""
        path = Path(path)
        if not path.is_file():
            raise DataError("grid field file not found", path=str(path))
        with np.load(path) as data:
            arrays = {}
            for key in ("origin", "spacing", "potential"):
                if key not in data:
                    raise DataError(f"missing array; expected origin, spacing and potential, "
                                    f"found {', '.join(data.files) or 'none'}",
                                    path=str(path), key=key)
                arrays[key] = np.asarray(data[key], dtype=float)
        for key in ("origin", "spacing"):  # a scalar spacing means a cubic grid
            if arrays[key].shape != (3,) and not (key == "spacing" and arrays[key].ndim == 0):
                raise DataError(f"expected 3 numbers in Å, got shape {list(arrays[key].shape)}",
                                path=str(path), key=key)
        return cls(arrays["origin"], arrays["spacing"], arrays["potential"], outside, str(path))

    def save_npz(self, path: str | Path) -> None:
        """Write the grid in the format ``from_npz`` reads."""
        np.savez(path, origin=self.origin, spacing=self.spacing, potential=self.potential_grid)

    def _coefficients(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = self._coeffs.to(dtype=like.dtype, device=like.device)
        return self._cache[key]

    def _interpolate(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """phi [N] V and E [N,3] V/Å, both differentiable w.r.t. positions."""
        _check_positions(positions)
        coeffs = self._coefficients(positions)
        origin, spacing = (torch.as_tensor(a, dtype=positions.dtype, device=positions.device)
                           for a in (self.origin, self.spacing))
        n = torch.tensor(self.potential_grid.shape, device=positions.device)
        u = (positions - origin) / spacing  # grid coordinates
        upper = (n - 1).to(u.dtype)
        inside = ((u >= -1e-9) & (u <= upper + 1e-9)).all(-1)  # False for NaN too
        bad = ~inside if self.outside == "error" else ~torch.isfinite(u).all(-1)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            lo = self.origin
            hi = lo + (np.array(self.potential_grid.shape) - 1) * self.spacing
            raise DataError(f"atom {i} at {_floats(positions[i].detach().cpu().numpy())} Å "
                            f"lies outside the potential grid spanning {_floats(lo)} to "
                            f"{_floats(hi)} Å", path=self.source)
        u = torch.minimum(torch.clamp(u, min=0.0), upper)
        # The cell index is piecewise constant; only the in-cell coordinate t carries gradients.
        cell = torch.minimum(u.detach().floor().long(), n - 2)
        t = u - cell.to(u.dtype)
        wx, dwx = _bspline_basis(t[:, 0])
        wy, dwy = _bspline_basis(t[:, 1])
        wz, dwz = _bspline_basis(t[:, 2])
        # Coefficient c_{i-1+a} of the padded array sits at index i + a (a = 0..3).
        four = torch.arange(4, device=positions.device)
        ix, iy, iz = (cell[:, d, None] + four for d in range(3))
        ny, nz = coeffs.shape[1], coeffs.shape[2]
        flat = (ix[:, :, None, None] * ny + iy[:, None, :, None]) * nz + iz[:, None, None, :]
        c = coeffs.reshape(-1)[flat]  # [N, 4, 4, 4]
        phi = torch.einsum("na,nb,nc,nabc->n", wx, wy, wz, c)
        grad = torch.stack([torch.einsum("na,nb,nc,nabc->n", dwx, wy, wz, c),
                            torch.einsum("na,nb,nc,nabc->n", wx, dwy, wz, c),
                            torch.einsum("na,nb,nc,nabc->n", wx, wy, dwz, c)], -1)
        return phi, -grad / spacing

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        return self._interpolate(positions)[1]

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        return self._interpolate(positions)[0]

    def to_dict(self) -> dict:
        """``{type: grid, file: ...}`` when loaded from a file, else the arrays inline."""
        if self.source is not None:
            return {"type": "grid", "file": self.source, "outside": self.outside}
        return {"type": "grid", "origin": _floats(self.origin), "spacing": _floats(self.spacing),
                "potential": self.potential_grid.tolist(), "outside": self.outside}

    @classmethod
    def _from_dict(cls, d, base_dir):
        outside = d.get("outside", "error")
        if "file" in d:
            _check_keys(d, ("file",), ("outside",))
            path = Path(d["file"])
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            return cls.from_npz(path, outside)
        _check_keys(d, ("origin", "spacing", "potential"), ("outside",))
        return cls(d["origin"], d["spacing"], d["potential"], outside)


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
