"""Sparse GP machinery of the kernel heads: the solve against the exact GP and the normal
equations, the symmetry-adapted kernels' equivariance on real lambda-SOAP features,
farthest-point sampling, and cross-validation of the noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fieldforce.models.kernels import (
    SparseSolve,
    cross_validate,
    farthest_point_sampling,
    kernel,
    normalise,
)

D = torch.float64


def random_problem(seed=0, n=40, m=12, f=6):
    g = torch.Generator().manual_seed(seed)
    x = normalise(torch.randn(n, f, generator=g, dtype=D))
    sparse = x[:m]
    k_mm = kernel(sparse, sparse)[:, 0, :, 0]
    design = kernel(x, sparse)[:, 0, :, 0]
    return x, sparse, k_mm, design, g


def test_solve_equals_the_normal_equations_and_the_exact_gp():
    x, sparse, k_mm, design, g = random_problem()
    y = torch.randn(len(x), generator=g, dtype=D)
    sigma, theta = 0.1, 2.0
    solve = SparseSolve.fit(design, y, sigma, k_mm, theta)
    precision = k_mm / theta**2 + design.T @ design / sigma**2
    naive = torch.linalg.solve(precision, design.T @ y / sigma**2)
    assert torch.allclose(solve.weights, naive, rtol=1e-7, atol=1e-9)
    covariance = solve.covariance_factor @ solve.covariance_factor.T
    assert torch.allclose(covariance, torch.linalg.inv(precision), rtol=1e-6, atol=1e-10)
    # sparse points = training points: the exact GP with prior covariance theta^2 K
    full = x[:12]
    k = kernel(full, full)[:, 0, :, 0]
    solve = SparseSolve.fit(k, y[:12], sigma, k, theta)
    noisy = theta**2 * k + sigma**2 * torch.eye(12, dtype=D)
    exact = theta**2 * k @ torch.linalg.solve(noisy, y[:12])
    assert torch.allclose(solve.predict(k), exact, atol=1e-8)
    exact_var = torch.diagonal(theta**2 * k - theta**4 * k @ torch.linalg.solve(noisy, k))
    assert torch.allclose(solve.variance(k), exact_var, rtol=1e-5, atol=1e-10)


def test_variance_shrinks_with_data_and_recovers_a_kernel_function():
    x, sparse, k_mm, design, g = random_problem(seed=1, n=200, m=20)
    w_true = torch.randn(20, generator=g, dtype=D)
    y = design @ w_true  # a function the model can represent exactly
    few = SparseSolve.fit(design[:10], y[:10], 1e-3, k_mm)
    many = SparseSolve.fit(design, y, 1e-3, k_mm)
    assert (many.variance(design) <= few.variance(design) + 1e-12).all()
    prior = torch.diagonal(k_mm)  # theta = 1: the prior variance at the sparse points
    assert (many.variance(kernel(sparse, sparse)[:, 0, :, 0]) < 1e-3 * prior).all()
    assert torch.allclose(many.predict(design), y, atol=1e-4)


def water_features(rotation=None):
    from fieldforce.descriptors import SOAPFeatures

    rng = np.random.default_rng(3)
    water = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    positions = np.concatenate([water + [2.9 * k, 0.4 * k, 0.2 * k] for k in range(3)])
    positions = positions + rng.normal(0, 0.1, positions.shape)
    if rotation is not None:
        positions = positions @ rotation.T
    soap = SOAPFeatures({"cutoff": 4.0, "max_radial": 3, "max_angular": 3, "species": [1, 8]})
    return soap(torch.tensor(positions), torch.tensor([8, 1, 1] * 3), torch.zeros(1, 3, 3, dtype=D),
                torch.zeros(1, 3, dtype=torch.bool), torch.zeros(9, dtype=torch.long))


def test_symmetry_adapted_kernels_rotate_the_predictions_exactly():
    pytest.importorskip("featomic.torch")
    from fieldforce.descriptors import spherical_to_cartesian_l2

    q, r = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    rotation = rotation if np.linalg.det(rotation) > 0 else -rotation
    a, b = water_features(), water_features(rotation)
    sparse = [0, 4, 8]  # sparse environments from the unrotated structure
    weights = {1: torch.randn(3, 3, dtype=D), 2: torch.randn(3, 5, dtype=D)}
    rot = torch.tensor(rotation)
    for lam, key in ((1, "vector"), (2, "tensor")):
        preds = []
        for f in (a, b):  # the model (sparse environments of a, weights) stays fixed
            k = kernel(normalise(f["invariant"]), normalise(a["invariant"])[sparse], 2,
                       normalise(f[key]), normalise(a[key])[sparse])
            preds.append(torch.einsum("iajb,jb->ia", k, weights[lam]))
        # k(R i, M) = D(R) k(i, M): the predictions rotate as the property
        if lam == 1:
            assert torch.allclose(preds[1], preds[0] @ rot.T, atol=1e-9)
        else:
            t_a, t_b = (spherical_to_cartesian_l2(p[..., None])[..., 0] for p in preds)
            assert torch.allclose(t_b, rot @ t_a @ rot.T, atol=1e-9)
        assert not torch.allclose(preds[1], preds[0], atol=1e-3)  # not trivially invariant
    # the scalar kernel is invariant
    k0a = kernel(normalise(a["invariant"]), normalise(a["invariant"]))
    k0b = kernel(normalise(b["invariant"]), normalise(b["invariant"]))
    assert torch.allclose(k0a, k0b, atol=1e-10)


def test_farthest_point_sampling_spans_the_data():
    x = torch.linspace(0, 10, 11, dtype=D)[:, None]
    assert farthest_point_sampling(x, 3).tolist() == [0, 10, 5]
    assert farthest_point_sampling(x, 20).tolist() == list(range(11))


def test_cross_validation_prefers_small_noise_on_exact_data_and_large_on_noise():
    x, sparse, k_mm, design, g = random_problem(seed=2, n=120, m=15)
    clean = design @ torch.randn(15, generator=g, dtype=D)
    groups = torch.arange(120)
    best, scores = cross_validate(design, clean, groups, k_mm, [1e-4, 1e-2, 1.0])
    assert best == 1e-4 and scores[1e-4] < scores[1.0]
    noise = torch.randn(120, generator=g, dtype=D)  # pure noise: nothing to fit, regularise hard
    best, _ = cross_validate(design, noise, groups, k_mm, [1e-4, 1e-2, 10.0])
    assert best == 10.0
