"""Static non-uniform fields from a potential on a grid (e.g. a finite-element solution
around a metal tip), interpolated by a tricubic B-spline so E = -grad phi is smooth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldforce.errors import ConfigError, DataError
from fieldforce.fields.base import (
    ExternalField,
    _check_keys,
    _check_positions,
    _floats,
    _vector3,
)


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
    ``"clamp"`` evaluates at the nearest point of the grid box (there E is not curl-free, and
    E = -grad phi holds only inside the box). ``potential`` gives the interpolated phi, in
    the gauge of the grid's values. Static: ``depends_on_time`` is False; a grid re-solved
    as the atoms move belongs in a subclass that sets ``depends_on_atoms`` and ``update``.
    """

    config_type = "grid"
    # documentation only (``fieldforce config field``): _from_dict checks them itself
    _optional = ("file", "origin", "spacing", "potential", "outside")
    depends_on_time = False
    has_potential = True

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
