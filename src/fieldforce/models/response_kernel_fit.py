"""The closed-form fit of the kernel response model (:mod:`fieldforce.models.response_kernel`).

:class:`KernelFit` is the half of :class:`~fieldforce.models.response_kernel.KernelResponseModel`
that sets its weights from training frames: the sparse environments (farthest-point
sampling per species), then two sparse-GP solves, polarizabilities and dipoles first, then
energies and forces with the now known field terms subtracted; each noise level not fixed
in the ``model:`` section cross-validated over structures (NOISE_GRID, and
FORCE_RATIO_GRID for the force noise relative to the energy noise). It is a mixin: it
uses the model's features, kernels (``_similarity``, ``_response_kernels``,
``_mu_alpha``), settings and buffers, and writes the buffers the prediction reads. The
prediction and the uncertainties stay in the model's module, their calibration in
:mod:`fieldforce.models.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fieldforce.data.batch import Batch, collate, physical_components
from fieldforce.data.frame import Frame
from fieldforce.descriptors import spherical_to_cartesian_l2
from fieldforce.errors import ConfigError, DataError
from fieldforce.models.backbone import composition_baseline, composition_counts
from fieldforce.models.derivatives import rows_gradient
from fieldforce.models.kernels import (
    JITTER,
    SparseSolve,
    cross_validate,
    farthest_point_sampling,
    normalise,
)
from fieldforce.models.response import field_coupling

#: noise levels tried by cross-validation, as fractions of each property's prior scale
NOISE_GRID = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
#: ratios (force noise / prior force scale) / (energy noise / prior energy scale) tried
FORCE_RATIO_GRID = (0.3, 1.0, 3.0)
#: posterior directions of the energy weights kept for the force uncertainty (one backward
#: pass each, on request)
FORCE_RANK = 24


class KernelFit:
    """The closed-form :meth:`fit` of the kernel response model (a mixin, see above)."""

    def fit(self, frames: Sequence[Frame], weights: dict[str, float]) -> dict:
        """Closed-form fit (see the module docstring); returns the noise levels used
        (``energy_noise`` eV/atom, ``forces_noise`` eV/Å, ``dipole_noise`` e·Å and
        ``polarizability_noise`` e·Å²/V per atom: the model keys that would fix them), the
        cross-validation scores and the sparse set sizes, for metrics.json."""
        terms = {k for k, v in weights.items() if v > 0}
        unsupported = terms - {"energy", "forces", "dipole", "polarizability"}
        if unsupported:
            raise ConfigError(f"the kernel response model fits energies, forces, dipoles "
                              f"and polarizabilities; not {sorted(unsupported)}")
        batch = collate(frames)
        positions = batch.positions.detach().requires_grad_("forces" in terms)
        moved = batch.with_positions(positions)
        density = self.features.fixed_density(batch.positions, batch.numbers, batch.cell,
                                              batch.pbc, batch.structure_index)
        feats = self.features(positions, batch.numbers, batch.cell, batch.pbc,
                              batch.structure_index, equivariant=True, density=density)
        species = self.species_index(batch.numbers)
        x = normalise(feats["invariant"])
        info: dict[str, Any] = {}
        with torch.no_grad():
            chosen = self._sparse(x, species, self.settings.sparse_points)
            self.sparse_invariant = x[chosen].detach().clone()
            self.sparse_species = species[chosen].clone()
            rchosen = self._sparse(x, species, self.settings.response_sparse_points)
            self.response_invariant = x[rchosen].detach().clone()
            self.response_species = species[rchosen].clone()
            self.response_vector = normalise(feats["vector"][rchosen]).detach().clone()
            self.response_tensor = normalise(feats["tensor"][rchosen]).detach().clone()
        info["sparse_points"] = len(chosen)
        info["response_sparse_points"] = len(rchosen)
        atom_field = batch.field[batch.structure_index]
        if terms & {"dipole", "polarizability"}:
            info.update(self._fit_response(batch, feats, x, species, atom_field, terms))
        else:
            for name in ("dipole_weights", "aniso_weights"):
                setattr(self, name, torch.zeros(len(rchosen), 3 if name[0] == "d" else 5,
                                                dtype=x.dtype))
            self.iso_weights = torch.zeros(len(rchosen), dtype=x.dtype)
            for name, size in (("dipole_factor", 3), ("iso_factor", 1), ("aniso_factor", 5)):
                setattr(self, name, torch.zeros(size * len(rchosen), size * len(rchosen),
                                                dtype=x.dtype))
        info.update(self._fit_energy(moved, positions, feats, x, species, atom_field, terms))
        return info

    @staticmethod
    def _sparse(x: torch.Tensor, species: torch.Tensor, per_species: int) -> torch.Tensor:
        """Farthest-point sparse environments of each species (rows of ``x``)."""
        parts = []
        for s in torch.unique(species):
            rows = torch.nonzero(species == s).flatten()
            parts.append(rows[farthest_point_sampling(x[rows].detach(), per_species)])
        return torch.cat(parts)

    def _labels(self, batch: Batch, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Structures with label ``name`` and its values there."""
        if name not in batch.labels:
            raise DataError(f"the training frames have no {name} labels, but the {name} term "
                            "is on")
        structures = torch.nonzero(batch.label_mask[name]).flatten()
        return structures, batch.labels[name][structures]

    def _stage(self, batch: Batch, parts: list[tuple], k_mm: torch.Tensor
               ) -> tuple[SparseSolve, float, dict]:
        """One sparse-GP solve over structure labels. ``parts``: (name, design
        [B, *label shape, P], offset [B, *label shape] subtracted from the labels (or
        None), prior scale per atom of the label (the noise unit)). The noise is the
        ``<name>_noise`` setting, else sigma x that scale, sigma cross-validated."""
        n_atoms = batch.n_atoms_per_structure.to(k_mm.dtype)
        rows, targets, scales, fixed, groups = [], [], [], [], []
        for name, design, offset, unit in parts:
            structures, values = self._labels(batch, name)
            if offset is not None:
                values = values - offset[structures]
            label = physical_components(batch, name, values, structures).reshape(-1)
            per_row = label.numel() // len(structures)
            rows.append(_project(batch, name, design[structures], structures, per_row))
            targets.append(label)
            noise = getattr(self.settings, f"{name}_noise")
            # noise per atom, summed over a structure's atoms: x sqrt(atoms)
            root = torch.sqrt(n_atoms[structures]).repeat_interleave(per_row)
            scales.append(root * (noise if noise is not None else unit))
            fixed.append(torch.full_like(root, noise is not None, dtype=torch.bool))
            groups.append(structures.repeat_interleave(per_row))
        design, target = torch.cat(rows), torch.cat(targets)
        relative, fixed_rows = torch.cat(scales), torch.cat(fixed)
        if bool(fixed_rows.all()):
            sigma, scores = 1.0, {}
        else:
            sigma, scores = cross_validate(design, target, torch.cat(groups), k_mm,
                                           list(NOISE_GRID), 1.0, self.settings.folds,
                                           relative, fixed_rows)
        relative = torch.where(fixed_rows, relative, sigma * relative)
        return SparseSolve.fit(design, target, relative, k_mm, 1.0), sigma, scores

    def _absolute(self, name: str, sigma: float, unit: float) -> float:
        """The noise per atom of ``name`` a solve used, in its unit (the key
        ``<name>_noise`` of the model section takes it back)."""
        fixed = getattr(self.settings, f"{name}_noise")
        return float(fixed) if fixed is not None else float(sigma * unit)

    def _fit_response(self, batch, feats, x, species, atom_field, terms) -> dict:
        """Polarizabilities first (their labels fix alpha_i), then dipoles with the
        induced alpha E removed (each with its own cross-validated noise); dipoles alone
        (no polarizability labels) fit mu and alpha jointly through alpha E."""
        with torch.no_grad():
            k0, k1, k2 = self._response_kernels(
                {k: v.detach() for k, v in feats.items()}, x.detach(), species)
            b, mr = batch.n_structures, k0.shape[1]
            eye = torch.eye(3, dtype=x.dtype)
            basis = spherical_to_cartesian_l2(torch.eye(5, dtype=x.dtype)[..., None])[..., 0]
            # design blocks per structure: alpha [iso Mr | aniso 5 Mr], mu [3 Mr]
            aniso_alpha = torch.einsum("mab,imrn->iabrn", basis, k2)  # [N, 3, 3, Mr, 5]
            p_rows = torch.cat([
                eye[None, :, :, None] * batch.sum_per_structure(k0)[:, None, None, :],
                batch.sum_per_structure(aniso_alpha).reshape(b, 3, 3, 5 * mr)], dim=-1)
            induced_rows = torch.cat([  # d(sum alpha_i E_i)/d(alpha weights), [B, 3, 6 Mr]
                batch.sum_per_structure(atom_field[:, :, None] * k0[:, None, :]),
                batch.sum_per_structure(torch.einsum("iabrn,ib->iarn", aniso_alpha,
                                                     atom_field).reshape(-1, 3, 5 * mr))],
                dim=-1)
            mu_rows = batch.sum_per_structure(k1).reshape(b, 3, 3 * mr)
            n_atoms = batch.n_atoms_per_structure.to(x.dtype)
            theta = {"dipole": 1e-3, "iso": 1e-3, "aniso": 1e-3}
            if "dipole" in terms:
                structures, values = self._labels(batch, "dipole")
                theta["dipole"] = float((values / n_atoms[structures, None]).pow(2).mean()
                                        .sqrt().clamp_min(1e-6))
            # the isotropic baseline: per-species means of the atomic trace / 3, fitted to
            # the structures' traces; its alpha (and alpha E) are offsets of the labels
            self.iso_baseline.zero_()
            alpha_offset = torch.zeros(b, 3, 3, dtype=x.dtype)
            if "polarizability" in terms:
                structures, values = self._labels(batch, "polarizability")
                counts = composition_counts(species, batch.structure_index, b,
                                            len(self.species), x.dtype)
                trace = torch.diagonal(values, dim1=-2, dim2=-1).mean(-1)
                self.iso_baseline.copy_(composition_baseline(counts[structures], trace))
                alpha_offset = (counts @ self.iso_baseline)[:, None, None] * eye
                values = values - alpha_offset[structures]
                per_atom = values / n_atoms[structures, None, None]
                trace = torch.diagonal(per_atom, dim1=-2, dim2=-1).mean(-1)
                theta["iso"] = float(trace.pow(2).mean().sqrt().clamp_min(1e-6))
                theta["aniso"] = float((per_atom - trace[:, None, None] * eye).pow(2).mean()
                                       .sqrt().clamp_min(1e-6))
            # block priors: values at the sparse points ~ N(0, theta_b^2 K_b)
            kk0 = (self.response_invariant @ self.response_invariant.T) * (
                self.response_species[:, None] == self.response_species[None, :])
            power = kk0.pow(self.zeta - 1)[:, None, :, None]
            kk1 = torch.einsum("iaf,jbf->iajb", self.response_vector,
                               self.response_vector) * power
            kk2 = torch.einsum("iaf,jbf->iajb", self.response_tensor,
                               self.response_tensor) * power
            k_mu = kk1.reshape(3 * mr, 3 * mr) / theta["dipole"] ** 2
            k_alpha = torch.block_diag(kk0.pow(self.zeta) / theta["iso"] ** 2,
                                       kk2.reshape(5 * mr, 5 * mr) / theta["aniso"] ** 2)
            info: dict[str, Any] = {}
            w_alpha = torch.zeros(6 * mr, dtype=x.dtype)
            cov_alpha = torch.zeros(6 * mr, 6 * mr, dtype=x.dtype)
            w_mu = torch.zeros(3 * mr, dtype=x.dtype)
            cov_mu = torch.zeros(3 * mr, 3 * mr, dtype=x.dtype)
            if "polarizability" in terms:
                solve, sigma, scores = self._stage(batch, [(
                    "polarizability", p_rows, alpha_offset, max(theta["iso"],
                                                                theta["aniso"]))], k_alpha)
                w_alpha, factor = solve.weights, solve.covariance_factor
                cov_alpha = factor @ factor.T
                unit = max(theta["iso"], theta["aniso"])
                info.update(polarizability_noise=self._absolute("polarizability", sigma, unit),
                            polarizability_cv_rmse=scores)
                if "dipole" in terms:
                    baseline_field = self.iso_baseline[species, None] * atom_field
                    induced = induced_rows @ w_alpha + batch.sum_per_structure(
                        baseline_field)  # [B, 3]
                    solve, sigma, scores = self._stage(batch, [(
                        "dipole", mu_rows, induced, theta["dipole"])], k_mu)
                    w_mu, factor = solve.weights, solve.covariance_factor
                    cov_mu = factor @ factor.T
                    info.update(dipole_noise=self._absolute("dipole", sigma, theta["dipole"]),
                                dipole_cv_rmse=scores)
            else:  # dipoles alone: mu and alpha (through alpha E) together
                solve, sigma, scores = self._stage(batch, [(
                    "dipole", torch.cat([mu_rows, induced_rows], -1), None,
                    theta["dipole"])], torch.block_diag(k_mu, k_alpha))
                w, factor = solve.weights, solve.covariance_factor
                w_mu, w_alpha = w[:3 * mr], w[3 * mr:]
                cov_mu = factor[:3 * mr] @ factor[:3 * mr].T
                cov_alpha = factor[3 * mr:] @ factor[3 * mr:].T
                info.update(dipole_noise=self._absolute("dipole", sigma, theta["dipole"]),
                            dipole_cv_rmse=scores)
            self.dipole_weights = w_mu.reshape(mr, 3).clone()
            self.iso_weights = w_alpha[:mr].clone()
            self.aniso_weights = w_alpha[mr:].reshape(mr, 5).clone()
            self.dipole_factor = _square_factor(cov_mu)
            self.iso_factor = _square_factor(cov_alpha[:mr, :mr])
            self.aniso_factor = _square_factor(cov_alpha[mr:, mr:])
            self.prior_scales[1:] = torch.tensor([theta["dipole"], theta["iso"],
                                                  theta["aniso"]])
        return info

    def _fit_energy(self, moved, positions, feats, x, species, atom_field, terms) -> dict:
        """U0 from energies and forces, their field terms (the response heads) removed."""
        batch = moved
        m = self.sparse_invariant.shape[0]
        s = self._similarity(x, species, self.sparse_invariant, self.sparse_species)
        k = s.pow(self.zeta)  # [N, M], differentiable through the positions
        with torch.no_grad():
            kk = (self.sparse_invariant @ self.sparse_invariant.T).pow(self.zeta) * (
                self.sparse_species[:, None] == self.sparse_species[None, :])
            lower = torch.linalg.cholesky(kk + JITTER * torch.eye(m, dtype=kk.dtype))
            self.sparse_whitener = torch.linalg.solve_triangular(
                lower, torch.eye(m, dtype=kk.dtype), upper=False)
        if "energy" not in terms and "forces" not in terms:
            self.energy_weights = torch.zeros(m, dtype=x.dtype)
            self.energy_factor = torch.zeros(m, m, dtype=x.dtype)
            self.force_factor = torch.zeros(m, 0, dtype=x.dtype)
            return {}
        # the field terms of the fitted response heads, their energies and forces
        field_energy = torch.zeros(batch.n_structures, dtype=x.dtype)
        field_forces = torch.zeros_like(positions)
        if bool(atom_field.abs().max() > 0) and self.dipole_weights.numel():
            coupling, _ = field_coupling(batch, *self._mu_alpha(feats, x, species), atom_field)
            field_energy = batch.sum_per_structure(coupling).detach()
            if positions.requires_grad:
                field_forces = -torch.autograd.grad(coupling.sum(), positions,
                                                    retain_graph=True)[0]
        counts = composition_counts(species, batch.structure_index, batch.n_structures,
                                    len(self.species), x.dtype)
        n_atoms = counts.sum(1)
        rows, targets, relative, groups = [], [], [], []
        scale_e = 1.0
        if "energy" in terms:
            structures, energy = self._labels(batch, "energy")
            energy = energy - field_energy[structures]
            baseline = composition_baseline(counts[structures], energy)
            self.energy_baseline.copy_(baseline)
            residual = energy - counts[structures] @ baseline
            scale_e = float((residual / n_atoms[structures]).std().clamp_min(1e-4)) \
                if len(structures) > 1 else 1e-2
            design_e = batch.sum_per_structure(k.detach())[structures]
            rows.append(design_e)
            targets.append(residual)
            relative.append(torch.sqrt(n_atoms[structures]))
            groups.append(structures)
        force_ratio = None
        if "forces" in terms:
            mask = batch.atom_mask("forces")
            if not bool(mask.any()):
                raise DataError("the training frames have no forces labels, but the forces "
                                "term is on")
            forces = (batch.labels["forces"] - field_forces.detach())[mask].reshape(-1)
            # d(sum_i k[i, M])/dr for each sparse column M: the structures are independent,
            # so one backward pass per column serves all of them
            design_f = -rows_gradient(k.sum(0), positions).permute(1, 2, 0)[mask].reshape(
                -1, m)
            scale_f = float(forces.std().clamp_min(1e-3))
            rows.append(design_f)
            targets.append(forces)
            force_ratio = scale_f / scale_e
            relative.append(torch.full_like(forces, force_ratio))
            groups.append(batch.structure_index[mask].repeat_interleave(3))
        design = torch.cat(rows)
        target = torch.cat(targets)
        group = torch.cat(groups)
        k_mm = kk / scale_e**2  # atomic energies ~ N(0, scale_e^2) at the sparse points
        fixed_e, fixed_f = self.settings.energy_noise, self.settings.forces_noise
        best: tuple[float, float, float] | None = None
        scores: dict[str, float] = {}
        ratios = FORCE_RATIO_GRID if force_ratio is not None and fixed_f is None else (1.0,)
        for ratio in ratios:
            rel = torch.cat([r if i == 0 and "energy" in terms else r * ratio
                             for i, r in enumerate(relative)]) if force_ratio else \
                torch.cat(relative)
            if fixed_e is not None or ("energy" not in terms and fixed_f is not None):
                sigma = (fixed_e / scale_e) if fixed_e is not None else 1.0
                score = float("nan")
            else:
                sigma, grid = cross_validate(design, target / scale_e, group, k_mm * scale_e**2,
                                             list(NOISE_GRID), 1.0, self.settings.folds, rel)
                score = grid[sigma]
                scores.update({f"{ratio:g}x{s:g}": v for s, v in grid.items()})
            if best is None or score < best[0]:
                best = (score, sigma, ratio)
        _, sigma, ratio = best
        rel = torch.cat([r if i == 0 and "energy" in terms else r * ratio
                         for i, r in enumerate(relative)]) if force_ratio else torch.cat(relative)
        if fixed_f is not None and "forces" in terms:  # an explicit force noise, eV/Å
            n_f = targets[-1].numel()
            rel[-n_f:] = fixed_f / (sigma * scale_e)
        solve = SparseSolve.fit(design, target, sigma * scale_e * rel, k_mm, 1.0)
        self.energy_weights = solve.weights.detach().clone()
        self.energy_factor = solve.covariance_factor.detach().clone()
        u, singular, _ = torch.linalg.svd(self.energy_factor, full_matrices=False)
        rank = min(FORCE_RANK, len(singular))
        self.force_factor = (u[:, :rank] * singular[:rank]).clone()
        self.prior_scales[0] = scale_e
        return {"energy_noise": sigma * scale_e,
                "forces_noise": (fixed_f if fixed_f is not None else
                                 sigma * scale_e * force_ratio * ratio if force_ratio
                                 else None),
                "energy_cv_rmse": scores}


def _project(batch: Batch, name: str, design: torch.Tensor, structures: torch.Tensor,
             per_row: int) -> torch.Tensor:
    """Design rows [S, *label shape, P] -> [S x per_row, P]: the observable components of
    each structure's label (:func:`physical_components`), column by column."""
    count, p = design.shape[0], design.shape[-1]
    columns = design.movedim(-1, 1).reshape(count * p, *design.shape[1:-1])
    projected = physical_components(batch, name, columns, structures.repeat_interleave(p))
    return projected.reshape(count, p, per_row).movedim(1, 2).reshape(count * per_row, p)


def _square_factor(covariance: torch.Tensor) -> torch.Tensor:
    """A square factor C with C C^T = ``covariance`` (symmetric positive semi-definite)."""
    values, vectors = torch.linalg.eigh(covariance)
    return vectors * values.clamp_min(0.0).sqrt()


__all__ = ["FORCE_RANK", "KernelFit"]
