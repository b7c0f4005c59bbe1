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
cross-validation over structures. The fit lives in
:mod:`fieldforce.models.response_kernel_fit` (a mixin of this class); its cost scales with
the sparse points (M per species): memory n_obs x M for the design, M^2 per covariance;
the training set enters linearly. The loss weights of the training file only switch terms
on (> 0) or off.

Uncertainties (standard deviations of the posterior of the latent function, without the
noise), each computed on request (``requests=``; the calculator's ``get_property``,
the MD trajectory and log at the steps they write, ``fieldforce eval``):
``energy_uncertainty`` [B] eV (subset-of-regressors variance of U0 plus the
part of each atom's prior variance the sparse set cannot represent, Nystrom residual,
summed over atoms as if independent), ``dipole_uncertainty`` [B, 3] e·Å (of sum_i mu_i),
``polarizability_uncertainty`` [B, 3, 3] e·Å²/V, and ``forces_uncertainty``
[N, 3] eV/Å (the forces of U0 along the ``FORCE_RANK`` leading directions of the weights'
posterior; the field terms' and the Nystrom residual's parts are left out);
``extrapolation`` per atom is the
square root of that residual fraction (0: the atom's environment lies in the span of the
sparse environments; 1: orthogonal to all of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from fieldforce.config import option
from fieldforce.data.batch import Batch
from fieldforce.data.frame import Frame
from fieldforce.descriptors import DescriptorSettings, SOAPFeatures, spherical_to_cartesian_l2
from fieldforce.errors import ConfigError
from fieldforce.models.backbone import species_rows
from fieldforce.models.contract import FieldModel, ModelSettings, output
from fieldforce.models.derivatives import rows_gradient
from fieldforce.models.kernels import normalise
from fieldforce.models.response import ResponseModel, field_coupling
from fieldforce.models.response_kernel_fit import KernelFit
from fieldforce.models.uncertainty import CalibratedUncertainties

#: buffers whose shape the fit decides (resized when a model file is loaded)
FITTED = ("sparse_invariant", "sparse_species", "sparse_whitener", "energy_weights",
          "energy_factor", "response_invariant", "response_vector", "response_tensor",
          "response_species", "dipole_weights", "iso_weights", "aniso_weights",
          "dipole_factor", "iso_factor", "aniso_factor", "force_factor")


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


class KernelResponseModel(KernelFit, CalibratedUncertainties, FieldModel):
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
            out["energy_uncertainty"] = self.uncertainty_scale("energy") * variance.sqrt()
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
        return self.uncertainty_scale("forces") * grads.pow(2).sum(0).sqrt().detach()

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
        return {"dipole_uncertainty": self.uncertainty_scale("dipole") * dipole,
                "polarizability_uncertainty": self.uncertainty_scale("polarizability") * (
                    aniso + iso[:, None, None] * eye).sqrt()}

    # -- fit ---------------------------------------------------------------------------------

    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Nothing separate: :meth:`fit` sets every data-dependent constant."""


__all__ = ["KernelResponseModel", "KernelResponseSettings"]
