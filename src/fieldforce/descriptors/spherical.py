"""Real spherical harmonics of lambda-SOAP features -> Cartesian vectors and tensors.

featomic orders the real spherical components m = -l..l; for l = 1 that is (y, z, x).
:data:`L1_TO_XYZ` reorders them to Cartesian (x, y, z); :func:`spherical_to_cartesian_l2`
maps the five l = 2 components to symmetric traceless 3x3 tensors, an isometry that turns
the rotation D(R) c into R T R^T.
"""

from __future__ import annotations

import math

import torch

# featomic's real spherical harmonics of l = 1 are ordered (y, z, x).
L1_TO_XYZ = [2, 0, 1]


def _l2_basis(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[5, 3, 3] orthonormal symmetric traceless matrices B_m, m = -2..2.

    r^T B_m r is proportional to the real solid harmonic r^2 Y_2^m (same factor for
    every m), so T = sum_m c_m B_m is an isometry that maps the spherical rotation
    D(R) c to R T R^T.
    """
    s2, s6 = 1 / math.sqrt(2.0), 1 / math.sqrt(6.0)
    basis = torch.zeros(5, 3, 3, dtype=dtype, device=device)
    basis[0, 0, 1] = basis[0, 1, 0] = s2  # xy
    basis[1, 1, 2] = basis[1, 2, 1] = s2  # yz
    basis[2] = torch.diag(torch.tensor([-s6, -s6, 2 * s6], dtype=dtype, device=device))
    basis[3, 0, 2] = basis[3, 2, 0] = s2  # xz
    basis[4, 0, 0], basis[4, 1, 1] = s2, -s2  # x^2 - y^2
    return basis


def spherical_to_cartesian_l2(t: torch.Tensor) -> torch.Tensor:
    """Real spherical lambda = 2 components -> symmetric traceless Cartesian tensors.

    ``t`` is [N, 5, ...] (m = -2..2, featomic's convention); the result is
    [N, 3, 3, ...] and transforms as R T R^T when ``t`` comes from a structure rotated
    by R. The map is orthonormal: sum_m t_m^2 equals the Frobenius norm of T squared.
    """
    if t.dim() < 2 or t.shape[1] != 5:
        raise ValueError(f"expected lambda = 2 components with shape [N, 5, ...], got {t.shape}.")
    basis = _l2_basis(t.dtype, t.device)
    return torch.einsum("mab,nm...->nab...", basis, t)


