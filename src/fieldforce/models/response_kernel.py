"""The response model with kernel heads: ``model: {family: response, head: gpr}``.

The physics is that of :mod:`fieldforce.models.response`,
U(R, E) = U0(R) - sum_i mu_i.E_i - 1/2 sum_i E_i.alpha_i.E_i, with the atomic energies,
dipoles mu_i and polarizabilities alpha_i = a_i I + T_i from sparse Gaussian-process
regression on the normalised SOAP features (:mod:`fieldforce.models.kernels`): a scalar
kernel for e_i and a_i, the symmetry-adapted lambda = 1 kernel for mu_i and lambda = 2
for the traceless T_i, so every prediction is exactly equivariant. Kernels between atoms
of different species are zero (the features do not encode the central species).

Fitted in closed form (no epochs), in two linear solves:

1. dipoles and polarizabilities: the structures' labels are sums of atomic
   contributions (the atomic ones stay latent, as in SA-GPR), a dipole at a field
   E including sum_i alpha_i E_i; polarizabilities first, with a per-species mean of
   the isotropic part (``iso_baseline``, fitted to the traces by composition) removed
   as SA-GPR removes the mean of its lambda = 0 part, then the dipoles;
2. energies and forces: their field terms, now known, are subtracted, and U0 is fitted
   to both; forces are derivative observations (the position gradients of the kernel
   sums, by autograd through the descriptors), so the kernel U0 drives MD.

Each regularisation (noise level) not set in the ``model:`` section is chosen by k-fold
cross-validation over structures. The fit's cost scales with the sparse points (M per
species): memory n_obs x M for the design, M^2 per covariance; the training set enters
linearly. The loss weights of the training file only switch terms on (> 0) or off.

Uncertainties (standard deviations of the posterior of the latent function, without the
noise), each computed on request (``requests=``; the calculator's ``get_property``,
the MD trajectory and log at the steps they write, ``fieldforce eval``):
``energy_uncertainty`` [B] eV (subset-of-regressors variance of U0 plus the
part of each atom's prior variance the sparse set cannot represent, Nystrom residual,
summed over atoms as if independent), ``dipole_uncertainty`` [B, 3] e·Å (of sum_i mu_i),
``polarizability_uncertainty`` [B, 3, 3] e·Å²/V, and ``forces_uncertainty``
[N, 3] eV/Å (the forces of U0 along the FORCE_RANK leading directions of the weights'
posterior; the field terms' and the Nystrom residual's parts are left out);
``extrapolation`` per atom is the
square root of that residual fraction (0: the atom's environment lies in the span of the
sparse environments; 1: orthogonal to all of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from fieldforce.config import option
from fieldforce.data.batch import Batch, collate, physical_components
from fieldforce.data.frame import Frame
from fieldforce.descriptors import DescriptorSettings, SOAPFeatures, spherical_to_cartesian_l2
from fieldforce.errors import ConfigError, DataError
from fieldforce.models.backbone import composition_baseline, composition_counts, species_rows
from fieldforce.models.contract import FieldModel, ModelSettings, output
from fieldforce.models.derivatives import rows_gradient
from fieldforce.models.kernels import (
    JITTER,
    SparseSolve,
    cross_validate,
    farthest_point_sampling,
    normalise,
)
from fieldforce.models.response import ResponseModel, field_coupling

#: noise levels tried by cross-validation, as fractions of each property's prior scale
NOISE_GRID = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
#: ratios (force noise / prior force scale) / (energy noise / prior energy scale) tried
FORCE_RATIO_GRID = (0.3, 1.0, 3.0)
#: buffers whose shape the fit decides (resized when a model file is loaded)
FITTED = ("sparse_invariant", "sparse_species", "sparse_whitener", "energy_weights",
          "energy_factor", "response_invariant", "response_vector", "response_tensor",
          "response_species", "dipole_weights", "iso_weights", "aniso_weights",
          "dipole_factor", "iso_factor", "aniso_factor", "force_factor")
#: posterior directions of the energy weights kept for the force uncertainty (one backward
#: pass each, on request)
FORCE_RANK = 24


@dataclass(kw_only=True)
class KernelResponseSettings(ModelSettings):
    """The ``model:`` section of ``family: response`` with ``head: gpr``."""

    family: str = option("response", "model family")
    head: str = option("gpr", "kernel heads (sparse Gaussian-process regression)")
    descriptor: DescriptorSettings = option(
        default_factory=DescriptorSettings,
        doc="SOAP settings (fieldforce.descriptors.DescriptorSettings); species are the "
            "model's")
    species: list[int] | None = option(None, "atomic numbers the model handles (default: "
                                       "those of the training data)", minimum=1,
                                       maximum=118)
    sparse_points: int = option(200, "sparse environments per species of the energy "
                                "kernel (farthest-point sampling)", minimum=1)
    response_sparse_points: int = option(100, "sparse environments per species of the "
                                         "dipole and polarizability kernels", minimum=1)
    zeta: int = option(2, "exponent of the scalar kernel (x_i . x_M)^zeta", minimum=1)
    energy_noise: float | None = option(None, "noise of the energies, eV per atom (null: "
                                        "cross-validation)", exclusive_minimum=0)
    forces_noise: float | None = option(None, "noise of the forces, eV/Å (null: "
                                        "cross-validation)", exclusive_minimum=0)
    dipole_noise: float | None = option(None, "noise of the dipoles, e·Å per atom (null: "
                                        "cross-validation)", exclusive_minimum=0)
    polarizability_noise: float | None = option(None, "noise of the polarizabilities, "
                                                "e·Å²/V per atom (null: cross-validation)",
                                                exclusive_minimum=0)
    folds: int = option(5, "folds of the cross-validation", minimum=2)


class KernelResponseModel(FieldModel):
    """Response model with sparse-GP heads (see the module docstring)."""

    family = "response"
    head = "gpr"
    settings_class = KernelResponseSettings
    fitting = "closed_form"
    field_support = "nonuniform"
    # only whether a term is on matters: the fit weighs observations by their noise
    default_loss_weights = {"energy": 1.0, "forces": 1.0, "dipole": 1.0,
                            "polarizability": 1.0}
    outputs = ResponseModel.outputs[:-1] + (
        output("extrapolation", per_atom=True, shape=(), dimension="dimensionless",
               description="square root of the fraction of the atom's prior energy "
                           "variance the sparse environments cannot represent (0..1)"),
        output("energy_uncertainty", like="energy", on_request=True,
               description="posterior standard deviation of U0"),
        output("dipole_uncertainty", like="dipole", on_request=True,
               description="posterior standard deviation of sum_i mu_i, per component"),
        output("polarizability_uncertainty", like="polarizability", on_request=True,
               description="posterior standard deviation of sum_i alpha_i, per component"),
        output("forces_uncertainty", like="forces", on_request=True,
               description="posterior standard deviation of the forces of U0, per "
                           "component (leading posterior directions)"),
    )
    extrapolation_threshold: ClassVar[float] = 0.5

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        species = self.settings.species
        if not species:
            raise ConfigError("model.species is empty; give the atomic numbers to model")
        self._species = sorted(int(z) for z in species)
        descriptor = DescriptorSettings.from_dict(
            {**self.settings.descriptor.to_dict(), "species": self.species},
            prefix="model.descriptor")
        self.config["species"] = self.species
        self.config["descriptor"]["species"] = self.species
        self.features = SOAPFeatures(descriptor)
        self.zeta = int(self.settings.zeta)
        self.register_buffer("species_map", torch.full((max(self.species) + 1,), -1,
                                                       dtype=torch.long))
        self.species_map[torch.tensor(self.species)] = torch.arange(len(self.species))
        self.register_buffer("energy_baseline", torch.zeros(len(self.species)))
        # mean isotropic atomic polarizability per species (e·Å²/V), removed before the
        # kernel fit as SA-GPR removes the mean of its lambda = 0 part: the scalar kernel
        # then spends its prior on the variation, not on a constant
        self.register_buffer("iso_baseline", torch.zeros(len(self.species)))
        # prior standard deviations: atomic energy (eV), dipole (e·Å), isotropic and
        # traceless polarizability (e·Å²/V)
        self.register_buffer("prior_scales", torch.ones(4))
        # factors on the energy, dipole and polarizability uncertainties, fitted on the
        # validation set by `fieldforce train` (calibrate); 1: the posterior as it is
        self.register_buffer("uncertainty_scales", torch.ones(4))
        for name in FITTED:
            dtype = torch.long if name.endswith("species") else torch.float64
            self.register_buffer(name, torch.zeros(0, dtype=dtype))
        self.double()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files written before the isotropic baseline existed fitted without one
        state_dict.setdefault(prefix + "iso_baseline", torch.zeros_like(self.iso_baseline))
        for name in FITTED:  # the fit decided these shapes
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def species(self) -> list[int]:
        """Atomic numbers the model knows."""
        return list(self._species)

    @property
    def fitted(self) -> bool:
        return self.sparse_invariant.numel() > 0

    def species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """[N] row of each atom's species; unknown species are an error."""
        return species_rows(self.species_map, numbers, self.species)

    # -- kernels ---------------------------------------------------------------------------

    def _similarity(self, x: torch.Tensor, species: torch.Tensor, sparse_x: torch.Tensor,
                    sparse_species: torch.Tensor) -> torch.Tensor:
        """(x_i . x_M) between atoms and sparse environments of the same species, [N, M]."""
        same = (species[:, None] == sparse_species[None, :]).to(x.dtype)
        return (x @ sparse_x.T) * same

    def _response_kernels(self, feats: dict, x: torch.Tensor, species: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k0 [N, Mr], k1 [N, 3, Mr, 3], k2 [N, 5, Mr, 5] against the response sparse set."""
        s = self._similarity(x, species, self.response_invariant, self.response_species)
        power = s.pow(self.zeta - 1)[:, None, :, None]
        k1 = torch.einsum("iaf,mbf->iamb", normalise(feats["vector"]),
                          self.response_vector) * power
        k2 = torch.einsum("iaf,mbf->iamb", normalise(feats["tensor"]),
                          self.response_tensor) * power
        return s.pow(self.zeta), k1, k2

    # -- forward -----------------------------------------------------------------------------

    def forward(self, batch: Batch, atom_field: torch.Tensor, response: bool = True,
                density=None, requests: frozenset[str] = frozenset()
                ) -> dict[str, torch.Tensor]:
        """Energy [B] eV and the declared outputs (see the module docstring);
        ``requests``: the uncertainties to compute (each on request: an MD step pays for
        none of them)."""
        if not self.fitted:
            raise ConfigError("this kernel model has not been fitted (fieldforce train)")
        field_on = bool(atom_field.detach().abs().max() > 0) if atom_field.numel() else False
        equivariant = response or field_on
        feats = self.features(batch.positions, batch.numbers, batch.cell, batch.pbc,
                              batch.structure_index, equivariant=equivariant, density=density)
        species = self.species_index(batch.numbers)
        x = normalise(feats["invariant"])
        s = self._similarity(x, species, self.sparse_invariant, self.sparse_species)
        k = s.pow(self.zeta)  # [N, M]
        atomic_energy = k @ self.energy_weights + self.energy_baseline[species]
        energy = batch.sum_per_structure(atomic_energy)
        with torch.no_grad():
            # Nystrom residual of each atom's prior variance (k(x, x) = 1)
            projected = (k @ self.sparse_whitener.T).pow(2).sum(-1)
            residual = (1.0 - projected).clamp_min(0.0)
        out = {"atomic_energies": atomic_energy, "energy_zero_field": energy,
               "extrapolation": residual.sqrt()}
        if "energy_uncertainty" in requests:
            with torch.no_grad():
                design = batch.sum_per_structure(k)
                variance = (design @ self.energy_factor).pow(2).sum(-1) + \
                    self.prior_scales[0] ** 2 * batch.sum_per_structure(residual)
            out["energy_uncertainty"] = self.uncertainty_scales[0] * variance.sqrt()
        if "forces_uncertainty" in requests:
            out["forces_uncertainty"] = self._force_uncertainty(batch.positions, k)
        if equivariant:
            mu, alpha = self._mu_alpha(feats, x, species)
            coupling, terms = field_coupling(batch, mu, alpha, atom_field)
            energy = energy + batch.sum_per_structure(coupling)
            out.update(terms)
            if requests & {"dipole_uncertainty", "polarizability_uncertainty"}:
                with torch.no_grad():
                    detached = {k_: v.detach() for k_, v in feats.items()}
                    k0, k1, k2 = self._response_kernels(detached, x.detach(), species)
                    out.update(self._response_uncertainty(batch, k0, k1, k2))
        out["energy"] = energy
        return out

    def _mu_alpha(self, feats: dict, x: torch.Tensor, species: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Atomic dipoles [N, 3] and polarizabilities [N, 3, 3]: mu_i = V_i sum_M
        s_iM^(zeta-1) V_M^T w_M, the weights projected on the sparse blocks first so that
        no [N, 3, M, 3] kernel is formed (the same for the traceless T_i)."""
        s_r = self._similarity(x, species, self.response_invariant, self.response_species)
        power = s_r.pow(self.zeta - 1)
        g1 = power @ torch.einsum("mbf,mb->mf", self.response_vector, self.dipole_weights)
        g2 = power @ torch.einsum("mbf,mb->mf", self.response_tensor, self.aniso_weights)
        mu = torch.einsum("iaf,if->ia", normalise(feats["vector"]), g1)
        aniso = torch.einsum("iaf,if->ia", normalise(feats["tensor"]), g2)
        iso = s_r.pow(self.zeta) @ self.iso_weights + self.iso_baseline[species]
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        alpha = iso[:, None, None] * eye + spherical_to_cartesian_l2(aniso[..., None])[..., 0]
        return mu, alpha

    def _force_uncertainty(self, positions: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Standard deviation [N, 3] eV/Å of -dU0/dr: the forces are -J w with J the position
        gradient of the kernel sums, so their variance is sum_q (J f_q)^2 over the columns
        f_q of ``force_factor`` (the leading directions of the weights' posterior); one
        backward pass per direction, batched."""
        if not positions.requires_grad or self.force_factor.numel() == 0:
            return torch.zeros_like(positions)
        grads = rows_gradient((k @ self.force_factor).sum(0), positions)  # [r, N, 3]
        return self.uncertainty_scales[3] * grads.pow(2).sum(0).sqrt().detach()

    def _response_uncertainty(self, batch: Batch, k0, k1, k2) -> dict[str, torch.Tensor]:
        """Standard deviations of sum_i mu_i [B, 3] and sum_i alpha_i [B, 3, 3]."""
        b = batch.n_structures
        d1 = batch.sum_per_structure(k1).reshape(b, 3, -1)  # [B, 3, 3 Mr]
        dipole = (d1 @ self.dipole_factor).pow(2).sum(-1).sqrt()
        iso = (batch.sum_per_structure(k0) @ self.iso_factor).pow(2).sum(-1)  # [B]
        d2 = batch.sum_per_structure(k2)  # [B, 5, Mr, 5]
        basis = spherical_to_cartesian_l2(torch.eye(5, dtype=k0.dtype)[..., None])[..., 0]
        cart = torch.einsum("mab,smrn->sabrn", basis, d2).reshape(b, 3, 3, -1)
        aniso = (cart @ self.aniso_factor).pow(2).sum(-1)
        eye = torch.eye(3, dtype=k0.dtype)
        return {"dipole_uncertainty": self.uncertainty_scales[1] * dipole,
                "polarizability_uncertainty": self.uncertainty_scales[2] * (
                    aniso + iso[:, None, None] * eye).sqrt()}

    # -- fit ---------------------------------------------------------------------------------

    #: the properties with an uncertainty, in the order of ``uncertainty_scales``
    UNCERTAIN = ("energy", "dipole", "polarizability", "forces")

    @torch.no_grad()
    def _zscores(self, frames: Sequence[Frame], names: Sequence[str]
                 ) -> dict[str, torch.Tensor]:
        """Errors over predicted standard deviations of each of ``names`` on ``frames``
        (observable components; energies per structure), from one evaluation."""
        from fieldforce.models.derivatives import evaluate

        batch = collate(frames)
        names = [n for n in names if n in batch.labels and bool(batch.label_mask[n].any())]
        if not names:
            return {}
        with torch.enable_grad():
            out = evaluate(self, batch, forces="forces" in names,
                           requests={f"{n}_uncertainty" for n in names})
        z = {}
        for name in names:
            if name == "forces":
                mask = batch.atom_mask("forces")
                error = (out["forces"] - batch.labels["forces"])[mask].reshape(-1).detach()
                sigma = out["forces_uncertainty"][mask].reshape(-1)
            else:
                structures = torch.nonzero(batch.label_mask[name]).flatten()
                error = physical_components(batch, name, (out[name] - batch.labels[name])[
                    structures], structures).reshape(-1)
                sigma = physical_components(batch, name, out[f"{name}_uncertainty"][
                    structures], structures).reshape(-1)
            z[name] = error / sigma.clamp_min(1e-300)
        return z

    def calibrate(self, frames: Sequence[Frame]) -> dict[str, float]:
        """One factor per uncertainty (energy, dipole, polarizability, forces) that makes the
        root-mean-square z-score (error / sigma) on ``frames`` 1: the posterior variance
        of a GP with cross-validated noise is a shape, its scale is not a prediction."""
        self.uncertainty_scales.fill_(1.0)
        factors = {}
        for name, z in self._zscores(frames, self.UNCERTAIN).items():
            if z.numel() >= 2 and bool(torch.isfinite(z).all()):
                factor = float(z.pow(2).mean().sqrt().clamp_min(1e-6))
                self.uncertainty_scales[self.UNCERTAIN.index(name)] = factor
                factors[name] = factor
        return factors

    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Nothing separate: :meth:`fit` sets every data-dependent constant."""

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


__all__ = ["KernelResponseModel", "KernelResponseSettings"]
