"""Sparse Gaussian-process regression on atomic descriptors: kernels, sparse points and
the closed-form solve with its predictive variance (the kernel heads of issue 15).

The model of a property is a sum of atomic contributions, each a kernel expansion over
M sparse (inducing) environments x_M of the training data:

    y_i,a = sum_M sum_b k^lambda_ab(x_i, x_M) w_M,b          (one atom i, component a)

* lambda = 0 (atomic energies, isotropic polarizabilities): k = (x_i . x_M)^zeta of the
  normalised power spectra, a polynomial kernel (zeta = 2 by default);
* lambda = 1 (atomic dipoles, Cartesian a, b) and lambda = 2 (the traceless part of
  atomic polarizabilities, spherical m = -2..2): the symmetry-adapted kernel of SA-GPR
  (Grisafi, Wilkins, Csanyi and Ceriotti, PRL 120, 036002 (2018)),
  k_ab = [V_i V_M^T]_ab (x_i . x_M)^(zeta - 1), V the atom's lambda-SOAP block [2l+1, F]
  divided by its Frobenius norm. Rotating the structure maps V to D(R) V, so
  k(R i, R M) = D k D^T and every prediction rotates exactly as the property.

A structure's label is a sum of atomic predictions (its ``structure design`` row), forces
are its negative position gradient: all observations are linear in the weights w, so
the fit is one linear solve. The prior makes the values of the function at the sparse
points N(0, theta^2 K_MM) (subset of regressors / projected process, Quinonero-Candela
and Rasmussen, JMLR 6, 1939 (2005)); with design Phi [n_obs, P] (P = M x components) and
noise sigma per observation, the posterior of w is Gaussian with precision

    A = K_MM / theta^2 + Phi^T diag(sigma^-2) Phi.

:class:`SparseSolve` never forms A: with K_MM = L L^T (Cholesky, jitter added) and the
whitened design B = Phi L^-T / sigma, it takes the QR factorisation of [B; I/theta] (the
normal equations square the condition number; this does not). Memory and time scale
with the sparse points, P^2 and n_obs P^2, not with the training set squared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: relative jitter added to the diagonal of K_MM before its Cholesky factorisation
JITTER = 1e-8


def _jitter(k_mm: torch.Tensor) -> torch.Tensor:
    """JITTER times each diagonal element of K_MM, as a diagonal matrix: relative per
    element, so that blocks of very different prior scales (block-diagonal K_MM of several
    kernels) each get the same relative regularisation, not one set by the largest."""
    return torch.diag(JITTER * torch.diagonal(k_mm).clamp_min(1e-300))


# -- sparse points ---------------------------------------------------------------------------


def farthest_point_sampling(x: torch.Tensor, n: int, first: int = 0) -> torch.Tensor:
    """Indices of ``n`` rows of ``x`` [N, F] chosen greedily, each the farthest (Euclidean)
    from those chosen before, starting at row ``first``; all rows if ``n >= N``.

    On normalised features the distance is sqrt(2 - 2 cos): the sparse set spans the
    environments instead of crowding where the data are dense."""
    count = x.shape[0]
    if n >= count:
        return torch.arange(count)
    chosen = [int(first)]
    distance = (x - x[first]).pow(2).sum(-1)
    for _ in range(n - 1):
        k = int(torch.argmax(distance))
        chosen.append(k)
        distance = torch.minimum(distance, (x - x[k]).pow(2).sum(-1))
    return torch.tensor(chosen)


# -- kernels ---------------------------------------------------------------------------------


def normalise(features: torch.Tensor) -> torch.Tensor:
    """Each atom's block divided by its Frobenius norm: [N, F] or [N, C, F]."""
    dims = tuple(range(1, features.ndim))
    norm = features.pow(2).sum(dims, keepdim=True).sqrt()
    return features / norm.clamp_min(1e-12)


def kernel(invariant_i: torch.Tensor, invariant_j: torch.Tensor, zeta: int = 2,
           block_i: torch.Tensor | None = None, block_j: torch.Tensor | None = None
           ) -> torch.Tensor:
    """The kernel between atoms i and j, [Ni, C, Nj, C] (C = 1 for lambda = 0).

    ``invariant_*`` [N, F0]: normalised power spectra. ``block_*`` [N, C, F]: normalised
    lambda-SOAP blocks (None: the scalar kernel (x_i . x_j)^zeta); with them the
    symmetry-adapted kernel V_i V_j^T (x_i . x_j)^(zeta - 1)."""
    scalar = invariant_i @ invariant_j.T  # [Ni, Nj]
    if block_i is None:
        return scalar.pow(zeta)[:, None, :, None]
    tensorial = torch.einsum("iaf,jbf->iajb", block_i, block_j)
    return tensorial * scalar.pow(zeta - 1)[:, None, :, None]


# -- the solve -------------------------------------------------------------------------------


@dataclass
class SparseSolve:
    """Posterior of the weights w [P] of a sparse GP (see the module docstring).

    weights [P]: the posterior mean; ``covariance_factor`` C [P, P] with
    cov(w) = C C^T, so the variance of a prediction phi . w is |phi C|^2.
    """

    weights: torch.Tensor
    covariance_factor: torch.Tensor

    @classmethod
    def fit(cls, design: torch.Tensor, targets: torch.Tensor, sigma: torch.Tensor | float,
            k_mm: torch.Tensor, theta: float = 1.0) -> SparseSolve:
        """Solve for the weights.

        Parameters
        ----------
        design
            Phi [n_obs, P]: each observation as a linear function of the weights.
        targets
            [n_obs] the observed values (same units as the rows of ``design``).
        sigma
            noise standard deviation per observation, [n_obs] or a number (> 0).
        k_mm
            [P, P] the kernel between the sparse points (with their components).
        theta
            prior standard deviation of the function at the sparse points (its units).
        """
        dtype = design.dtype
        p = k_mm.shape[0]
        sigma = torch.as_tensor(sigma, dtype=dtype).expand(design.shape[0])
        eye = torch.eye(p, dtype=dtype)
        lower = torch.linalg.cholesky(k_mm + _jitter(k_mm))
        # B = Phi L^-T / sigma, via a triangular solve: L X = Phi^T
        whitened = torch.linalg.solve_triangular(lower, design.T, upper=False).T
        stacked = torch.cat([whitened / sigma[:, None], eye / theta])
        q, r = torch.linalg.qr(stacked)
        rhs = torch.cat([targets / sigma, torch.zeros(p, dtype=dtype)])
        v = torch.linalg.solve_triangular(r, (q.T @ rhs)[:, None], upper=True)[:, 0]
        # w = L^-T v; cov(v) = (R^T R)^-1, so cov(w) = L^-T R^-1 R^-T L^-1
        r_inv = torch.linalg.solve_triangular(r, eye, upper=True)
        factor = torch.linalg.solve_triangular(lower.T, r_inv, upper=True)
        weights = torch.linalg.solve_triangular(lower.T, v[:, None], upper=True)[:, 0]
        return cls(weights=weights, covariance_factor=factor)

    def predict(self, design: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the observations ``design`` [n, P] describes, [n]."""
        return design @ self.weights

    def variance(self, design: torch.Tensor) -> torch.Tensor:
        """Posterior variance of each of those predictions (the latent function's, without
        observation noise), [n]."""
        return (design @ self.covariance_factor).pow(2).sum(-1)


def cross_validate(design: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
                   k_mm: torch.Tensor, sigmas: list[float], theta: float = 1.0,
                   folds: int = 5, relative: torch.Tensor | None = None,
                   fixed: torch.Tensor | None = None) -> tuple[float, dict[float, float]]:
    """The noise level of ``sigmas`` with the lowest k-fold cross-validation RMSE.

    ``groups`` [n_obs]: the structure each observation belongs to (a structure's rows stay
    together, so its forces do not leak into the fold that tests its energy);
    ``relative`` [n_obs]: per-observation factors the noise is multiplied by (e.g. the
    square root of the atom count for energies); the RMSE is taken on targets divided by
    them; ``fixed`` [n_obs] bool: rows whose noise is ``relative`` itself, whatever sigma
    (a noise level the user set). Returns (best sigma, {sigma: RMSE}); a level whose
    equations are singular in double precision gets None and is not chosen.

    Each fold forms its Gram matrices of the prior-whitened design once (the rows scaled
    by sigma and the fixed ones apart), so every sigma costs one Cholesky solve of size
    P: I / theta^2 + B^T B / sigma^2 is bounded below by the prior, so the normal
    equations stay positive definite even where K_MM is nearly singular (the final fit
    uses :class:`SparseSolve`)."""
    relative = torch.ones_like(targets) if relative is None else relative
    fixed = torch.zeros_like(targets, dtype=torch.bool) if fixed is None else fixed
    unique = torch.unique(groups)
    fold_of = torch.empty(int(groups.max()) + 1, dtype=torch.long)
    fold_of[unique] = torch.arange(len(unique)) % folds
    fold = fold_of[groups]
    eye = torch.eye(k_mm.shape[0], dtype=k_mm.dtype)
    lower_k = torch.linalg.cholesky(k_mm + _jitter(k_mm))
    whitened = torch.linalg.solve_triangular(lower_k, design.T, upper=False).T
    weighted = whitened / relative[:, None]
    scaled = targets / relative
    squared = dict.fromkeys(sigmas, 0.0)
    count = 0
    for f in range(folds):
        test = fold == f
        if not test.any() or test.all():
            continue
        parts = {}
        for name, rows in (("variable", ~test & ~fixed), ("fixed", ~test & fixed)):
            a = weighted[rows]
            parts[name] = (a.T @ a, a.T @ scaled[rows])
        for s in sigmas:
            gram = eye / theta**2 + parts["fixed"][0] + parts["variable"][0] / s**2
            rhs = parts["fixed"][1] + parts["variable"][1] / s**2
            lower, failed = torch.linalg.cholesky_ex(gram)
            if bool(failed):  # so little noise that the equations are singular in double
                squared[s] = float("inf")  # precision: a level that cannot be chosen
                continue
            v = torch.cholesky_solve(rhs[:, None], lower)[:, 0]
            error = (whitened[test] @ v - targets[test]) / relative[test]
            squared[s] += float(error.pow(2).sum())
        count += int(test.sum())
    scores = {s: (value / max(count, 1)) ** 0.5 for s, value in squared.items()}
    best = min(scores, key=scores.get)
    # levels that were numerically singular: None (JSON has no infinity)
    return best, {s: (v if v != float("inf") else None) for s, v in scores.items()}


__all__ = ["JITTER", "SparseSolve", "cross_validate", "farthest_point_sampling", "kernel",
           "normalise"]
