"""Canonical field emitters on a grounded plane, and their apex field enhancement factors.

Each shape stands on the plane z = 0, axis along z, apex at (0, 0, height):

- ``hemisphere`` of radius r (height = r): beta = 3 exactly (the plane's image completes
  a sphere in a uniform field: E = E0 (1 + 2 r^3 / |x|^3) at the poles);
- ``hemi-ellipsoid``: half a prolate spheroid, semi-minor axis r (the base radius) and
  semi-major axis h (the height), h >= r: closed form below;
- ``hemisphere-on-post``: a cylinder of radius r up to h - r capped by a hemisphere of
  radius r: no closed form; the published fit of Forbes, Edgcombe and Valdrè,
  Ultramicroscopy 95, 57 (2003), beta ~ 1.2 (2.15 + h/r)^0.90, stated to within 3 % for
  30 <= h/r <= 2000.

The hemi-ellipsoid (prolate spheroidal coordinates: z = f xi eta, f = sqrt(h^2 - r^2), the
surface at xi0 = h/f). The potential that is 0 on the spheroid (and on the plane z = 0,
eta = 0) and -E0 z far away is phi = -E0 f eta [xi - xi0 Q1(xi) / Q1(xi0)], Q1 the Legendre
function of the second kind, Q1(x) = x/2 ln((x+1)/(x-1)) - 1. On the axis (eta = 1,
z = f xi) the field at the apex is therefore

    beta = 1 - xi0 Q1'(xi0) / Q1(xi0),   Q1'(x) = 1/2 ln((x+1)/(x-1)) - x / (x^2 - 1),

which tends to 3 for a sphere (xi0 -> infinity) and to (h/r)^2 / (ln(2h/r) - 1) for a
needle (the classic result for a conducting prolate spheroid in a uniform field along
its axis; e.g. Kosmahl, IEEE Trans. Electron Devices 38, 1534 (1991)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fieldforce.errors import ConfigError

#: the canonical shapes ``fieldforce field validate --shape`` accepts
SHAPES = ("hemisphere", "hemi-ellipsoid", "hemisphere-on-post")


def _q1(x: float) -> tuple[float, float]:
    """Q1(x) and Q1'(x) for x > 1 (series for large x, where the closed form cancels)."""
    if x > 1e3:
        y = 1.0 / (x * x)
        return (y / 3 + y * y / 5 + y**3 / 7,
                -(2 * y / 3 + 4 * y * y / 5 + 6 * y**3 / 7) / x)
    log = math.log((x + 1.0) / (x - 1.0))
    return 0.5 * x * log - 1.0, 0.5 * log - x / (x * x - 1.0)


def beta_hemi_ellipsoid(height: float, radius: float) -> float:
    """Apex field enhancement of a hemi-ellipsoid (semi-major axis ``height`` along the
    field, semi-minor ``radius``) on a grounded plane; 3 when they are equal."""
    if height < radius:
        raise ConfigError(f"hemi-ellipsoid: height {height} < radius {radius}; the closed "
                          "form is for prolate shapes (height >= radius)")
    if height == radius:
        return 3.0
    xi0 = height / math.sqrt(height * height - radius * radius)
    q, dq = _q1(xi0)
    return 1.0 - xi0 * dq / q


def beta_hemisphere_on_post_fit(height: float, radius: float) -> float:
    """The published fit for a hemisphere on a post (Forbes, Edgcombe and Valdrè 2003),
    beta ~ 1.2 (2.15 + h/r)^0.90; stated within 3 % for 30 <= h/r <= 2000."""
    return 1.2 * (2.15 + height / radius) ** 0.90


@dataclass(frozen=True)
class Emitter:
    """One canonical emitter: ``shape`` (one of :data:`SHAPES`), ``radius`` and ``height``
    in Å (see the module docstring; the hemisphere's height is its radius)."""

    shape: str
    radius: float
    height: float

    @classmethod
    def make(cls, shape: str, radius: float, height: float | None = None) -> Emitter:
        """The emitter, with the arguments checked (one ConfigError naming the option)."""
        if shape not in SHAPES:
            raise ConfigError(f"--shape {shape!r}: expected one of {', '.join(SHAPES)}")
        if not (math.isfinite(radius) and radius > 0):
            raise ConfigError(f"--radius {radius}: expected a positive length in Å")
        if height is None:
            if shape != "hemisphere":
                raise ConfigError(f"--height: required for shape {shape!r} (the emitter's "
                                  "total height above the plane, Å)")
            height = radius
        if not (math.isfinite(height) and height > 0):
            raise ConfigError(f"--height {height}: expected a positive length in Å")
        if shape == "hemisphere" and abs(height - radius) > 1e-9 * radius:
            raise ConfigError(f"--height {height}: a hemisphere's height is its radius "
                              f"({radius}); use hemi-ellipsoid or hemisphere-on-post for "
                              "other heights")
        if shape != "hemisphere" and height < radius:
            raise ConfigError(f"--height {height} < --radius {radius}: the {shape} must be at "
                              "least as tall as its radius")
        return cls(shape, float(radius), float(height))

    @property
    def apex_radius(self) -> float:
        """Radius of curvature at the apex, Å (sets the mesh size there)."""
        if self.shape == "hemi-ellipsoid":
            return self.radius**2 / self.height
        return self.radius

    def reference(self) -> tuple[float | None, str]:
        """(beta, where it comes from); beta None where no reference applies."""
        aspect = self.height / self.radius
        if self.shape == "hemisphere":
            return 3.0, "exact (image sphere in a uniform field)"
        if self.shape == "hemi-ellipsoid":
            return beta_hemi_ellipsoid(self.height, self.radius), "closed form (prolate spheroid)"
        source = "fit of Forbes, Edgcombe and Valdrè (2003), within 3 % for 30 <= h/r <= 2000"
        if not 30 <= aspect <= 2000:
            source += f"; h/r = {aspect:g} is outside that range"
        return beta_hemisphere_on_post_fit(self.height, self.radius), source

    def add_to_gmsh(self) -> list[tuple[int, int]]:
        """The emitter as OpenCASCADE solids in the current gmsh model (full shape; the
        caller cuts the vacuum box with it, which keeps only z >= 0)."""
        import gmsh

        occ = gmsh.model.occ
        r, h = self.radius, self.height
        if self.shape == "hemisphere":
            return [(3, occ.addSphere(0, 0, 0, r))]
        if self.shape == "hemi-ellipsoid":
            tag = occ.addSphere(0, 0, 0, 1.0)
            occ.dilate([(3, tag)], 0, 0, 0, r, r, h)
            return [(3, tag)]
        post = occ.addCylinder(0, 0, -r, 0, 0, h, r)  # from below the plane up to h - r
        cap = occ.addSphere(0, 0, h - r, r)
        return [(3, post), (3, cap)]


__all__ = ["SHAPES", "Emitter", "beta_hemi_ellipsoid", "beta_hemisphere_on_post_fit"]
