"""The response model: U(R, E) = U0(R) - sum_i mu_i.E_i - 1/2 sum_i E_i.alpha_i.E_i.

Per atom i (DESIGN.md, "Field coupling by response"):

* backbone: SOAP power spectrum x_i (standardised) -> per-species MLP -> latent h_i;
* U0 = sum_i [e(h_i) + baseline(Z_i)], the baseline a least-squares fit of the
  energies to the composition;
* mu_i = s_mu sum_k (V_i W)_k g_k(h_i), with V_i [3, F1] the lambda = 1 features:
  a learned linear mix of equivariant channels with invariant-dependent weights,
  so mu_i rotates exactly as a vector;
* alpha_i = s_alpha [a(h_i) I + T_i], T_i the symmetric traceless tensor built the
  same way from the lambda = 2 features.

E_i is the field at atom i ([N, 3] V/Å, uniform or not); forces and field terms
come from :mod:`fieldforce.models.derivatives`. The reported ``dipole`` is the
dipole at the applied field, sum_i (mu_i + alpha_i E_i) (= -dU/dE for a uniform
field; what a DFT calculation at that field gives); ``permanent_dipole`` is sum_i
mu_i. Units: eV, e·Å, e·Å²/V.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fieldforce.data.batch import Batch, collate
from fieldforce.data.frame import Frame
from fieldforce.descriptors import DescriptorSettings, SOAPFeatures, spherical_to_cartesian_l2
from fieldforce.errors import ConfigError

#: documented defaults of the ``model:`` section of a training config.
DEFAULTS = {
    "family": "response",
    "descriptor": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3, "density_width": 0.3,
                   "smoothing_width": 0.5},
    "hidden": [64, 64],
    "channels": 16,
    "species": None,  # default: the species of the training data
}


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def model_config(config: dict | None) -> dict:
    """The ``model:`` section with defaults filled in; unknown keys are an error."""
    config = dict(config or {})
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in model; expected some of "
                          f"{sorted(DEFAULTS)}")
    out = copy.deepcopy(DEFAULTS)
    descriptor = {**out["descriptor"], **dict(config.pop("descriptor", None) or {})}
    out.update(config)
    out["descriptor"] = descriptor
    if out["family"] != "response":
        raise ConfigError(f"model family {out['family']!r} is not available; expected "
                          "'response'")
    return out


class ResponseModel(nn.Module):
    """Dipole + polarizability response model (see the module docstring)."""

    family = "response"

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = model_config(config)
        species = self.config["species"]
        if not species:
            raise ConfigError("model.species is empty; give the atomic numbers to model")
        species = sorted(int(z) for z in species)
        self.config["species"] = species
        settings = DescriptorSettings.from_dict({**self.config["descriptor"],
                                                 "species": species})
        self.features = SOAPFeatures(settings)
        f0, f1, f2 = self.features.n_invariant, self.features.n_vector, self.features.n_tensor
        hidden = [int(h) for h in self.config["hidden"]]
        k = int(self.config["channels"])
        self.register_buffer("species_map", torch.full((max(species) + 1,), -1,
                                                       dtype=torch.long))
        self.species_map[torch.tensor(species)] = torch.arange(len(species))
        self.backbones = nn.ModuleList(_mlp([f0, *hidden, hidden[-1]]) for _ in species)
        width = hidden[-1]
        self.energy_head = nn.Linear(width, 1)
        self.dipole_gates = nn.Linear(width, k)
        self.isotropic_head = nn.Linear(width, 1)
        self.tensor_gates = nn.Linear(width, k)
        self.vector_mix = nn.Linear(f1, k, bias=False)
        self.tensor_mix = nn.Linear(f2, k, bias=False)
        for name, size in (("feature_mean", f0), ("feature_std", f0)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))
        self.register_buffer("energy_baseline", torch.zeros(len(species)))
        for name in ("energy_scale", "dipole_scale", "polarizability_scale", "vector_scale",
                     "tensor_scale"):
            self.register_buffer(name, torch.ones(()))
        self.double()

    def batch_features(self, batch: Batch, equivariant: bool) -> dict[str, torch.Tensor]:
        """Descriptors of every atom of ``batch`` (see :class:`SOAPFeatures`)."""
        return self.features(batch.positions, batch.numbers, batch.cell, batch.pbc,
                             batch.structure_index, equivariant=equivariant)

    # -- statistics of the training data ------------------------------------

    @torch.no_grad()
    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Feature standardisation, composition baseline and output scales from data."""
        batch = collate(frames)
        feats = self.batch_features(batch, equivariant=True)
        x = feats["invariant"]
        self.feature_mean.copy_(x.mean(0))
        self.feature_std.copy_(x.std(0).clamp_min(1e-3 * float(x.std(0).max())))
        self.vector_scale.copy_(feats["vector"].pow(2).mean().sqrt().clamp_min(1e-8))
        self.tensor_scale.copy_(feats["tensor"].pow(2).mean().sqrt().clamp_min(1e-8))
        species_index = self.species_map[batch.numbers]
        counts = torch.zeros(batch.n_structures, len(self.config["species"]),
                             dtype=torch.float64)
        counts.index_put_((batch.structure_index, species_index),
                          torch.ones_like(species_index, dtype=torch.float64), accumulate=True)
        n_atoms = counts.sum(1)
        if "energy" in batch.labels:
            mask = batch.label_mask["energy"]
            energy = batch.labels["energy"][mask]
            solution = torch.linalg.lstsq(counts[mask], energy[:, None], rcond=None).solution
            self.energy_baseline.copy_(solution[:, 0])
            residual = (energy - counts[mask] @ solution[:, 0]) / n_atoms[mask]
            forces = batch.labels.get("forces")
            spread = residual.std() if len(residual) > 1 else torch.tensor(0.0)
            if forces is not None:
                spread = torch.maximum(spread, forces[batch.atom_mask("forces")].std())
            self.energy_scale.copy_(spread.clamp_min(1e-3))
        for name, buffer in (("dipole", self.dipole_scale),
                             ("polarizability", self.polarizability_scale)):
            if name in batch.labels:
                mask = batch.label_mask[name]
                values = batch.labels[name][mask] / n_atoms[mask].view(-1, *[1] * (
                    batch.labels[name].ndim - 1))
                if name == "polarizability":
                    values = torch.diagonal(values, dim1=-2, dim2=-1)
                buffer.copy_(values.pow(2).mean().sqrt().clamp_min(1e-6))

    # -- forward -------------------------------------------------------------

    def latent(self, invariant: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """Per-species backbone: standardised invariants [N, F0] -> latent [N, H]."""
        x = (invariant - self.feature_mean) / self.feature_std
        index = self.species_map[numbers]
        if (index < 0).any():
            bad = sorted(set(numbers[index < 0].tolist()))
            raise ConfigError(f"atomic numbers {bad} were not in the model's species "
                              f"{self.config['species']}")
        h = torch.zeros(x.shape[0], self.energy_head.in_features, dtype=x.dtype,
                        device=x.device)
        for s, net in enumerate(self.backbones):
            rows = index == s
            if rows.any():
                h = h.index_put((rows,), net(x[rows]))
        return h

    def forward(self, batch: Batch, atom_field: torch.Tensor,
                equivariant: dict[str, torch.Tensor] | None = None,
                response: bool = True) -> dict[str, torch.Tensor]:
        """Energy [B] eV and, with ``response``, dipoles and polarizabilities.

        ``equivariant``: precomputed lambda-SOAP features {vector, tensor} for fixed
        geometries (training on dipoles/polarizabilities). They carry no position
        gradient, so they are refused when the field is non-zero (its force terms
        need dmu/dr and dalpha/dr).
        """
        field_on = bool(atom_field.detach().abs().max() > 0) if atom_field.numel() else False
        if equivariant is not None and field_on:
            raise ValueError("cached equivariant features cannot be used at a non-zero "
                             "field: the forces need their position gradients")
        need_equivariant = (response or field_on) and equivariant is None
        feats = self.batch_features(batch, equivariant=need_equivariant)
        if equivariant is not None:
            feats.update(equivariant)
        h = self.latent(feats["invariant"], batch.numbers)
        index = self.species_map[batch.numbers]
        atomic_energy = (self.energy_scale * self.energy_head(h)[:, 0]
                         + self.energy_baseline[index])
        out = {"atomic_energies": atomic_energy}
        energy = batch.sum_per_structure(atomic_energy)
        out["energy_zero_field"] = energy
        if "vector" in feats:
            vector = self.vector_mix(feats["vector"] / self.vector_scale)  # [N, 3, K]
            mu = self.dipole_scale * (vector * self.dipole_gates(h)[:, None, :]).sum(-1)
            tensor = self.tensor_mix(feats["tensor"] / self.tensor_scale)  # [N, 5, K]
            spherical = (tensor * self.tensor_gates(h)[:, None, :]).sum(-1)
            eye = torch.eye(3, dtype=h.dtype, device=h.device)
            alpha = self.polarizability_scale * (
                self.isotropic_head(h)[:, :, None] * eye
                + spherical_to_cartesian_l2(spherical[..., None])[..., 0])
            coupling = -(mu * atom_field).sum(-1) - 0.5 * torch.einsum(
                "na,nab,nb->n", atom_field, alpha, atom_field)
            energy = energy + batch.sum_per_structure(coupling)
            induced = torch.einsum("nab,nb->na", alpha, atom_field)
            # the dipole at the applied field, -dU/dE for a uniform field: mu + alpha E
            out.update(atomic_dipoles=mu, atomic_polarizabilities=alpha,
                       permanent_dipole=batch.sum_per_structure(mu),
                       dipole=batch.sum_per_structure(mu + induced),
                       polarizability=batch.sum_per_structure(alpha))
        out["energy"] = energy
        return out

    def equivariant_features(self, batch: Batch) -> dict[str, torch.Tensor]:
        """lambda-SOAP features of a fixed batch, without gradients (for caching)."""
        with torch.no_grad():
            feats = self.batch_features(batch, equivariant=True)
        return {"vector": feats["vector"], "tensor": feats["tensor"]}


def species_of(frames: Sequence[Frame]) -> list[int]:
    return sorted({int(z) for f in frames for z in np.unique(f.atoms.numbers)})
