"""The shared backbone of every model family: descriptors -> per-atom latent -> energies.

Per atom i:

* x_i: the SOAP power spectrum (:class:`fieldforce.descriptors.SOAPFeatures`),
  less the training data's mean, divided by one spread for all (``feature_scaling:
  global``, the default since 2026-12-06), by each feature's own training spread
  (``per_feature``, the earlier default and that of older files) or by one per
  species-pair block (``pair``) (:meth:`Backbone.standardise`);
* h_i = MLP_{Z_i}(x_i): one network per species, all of the same width; or, with
  ``species_embedding`` k > 0, one network shared by every species,
  h_i = MLP([x_i, w_{Z_i}]) with a learned k-vector w per species (more data per
  weight when there are many species and few frames);
* optionally ``interactions`` message-passing layers
  (:mod:`fieldforce.models.interaction`) refine h_i with the neighbours' latents,
  extending the receptive field beyond the descriptor cutoff; with
  ``interaction_vectors`` each layer also passes equivariant l = 1 features to the next;
* e_i = s_E e(h_i) + b(Z_i): a linear energy head scaled by the energy scale s_E
  (eV) plus the composition baseline b (eV per atom of each species, a
  least-squares fit of the training energies to the composition).

Families add their own heads on h_i (dipoles and polarizabilities, latent
charges, ...) and extend :class:`BackboneSettings`, the ``model:`` keys they share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fieldforce.config import option
from fieldforce.data.batch import Batch, collate
from fieldforce.data.frame import Frame
from fieldforce.descriptors import DescriptorSettings, FixedDensity, SOAPFeatures
from fieldforce.errors import ConfigError
from fieldforce.models.contract import ModelSettings
from fieldforce.models.interaction import BatchPairs, Interaction

#: memory the training cache of densities may take (about 1 MB per 10-atom cluster,
#: 10 MB per 192-atom periodic water frame at the default resolution)
GEOMETRY_CACHE_BYTES = 2e9


@dataclass
class FixedGeometry:
    """What depends only on a training batch's geometry, found once per frame: featomic's
    density with its position gradient (:class:`~fieldforce.descriptors.FixedDensity`)
    and the interaction layers' pairs of each structure (None without layers), with the
    structures' atom counts."""

    density: FixedDensity
    pairs: list[BatchPairs] | None
    sizes: list[int]


@dataclass(kw_only=True)
class BackboneSettings(ModelSettings):
    """The ``model:`` keys of every family on the shared backbone."""

    # files from before the interaction layers hold models without them
    file_defaults: ClassVar[dict[str, Any]] = {"interactions": 0,
                                                "interaction_products": False,
                                                "interaction_channels": None,
                                                "interaction_max_angular": 2,
                                                "interaction_radial": 0,
                                                "interaction_vectors": False,
                                                "feature_scaling": "per_feature",
                                                "species_embedding": 0,
                                                "descriptor": DescriptorSettings.file_defaults}

    descriptor: DescriptorSettings = option(
        default_factory=DescriptorSettings,
        doc="SOAP settings (fieldforce.descriptors.DescriptorSettings); species are the "
            "model's")
    hidden: list[int] = option([64, 64], "widths of the per-species networks; the latent "
                               "width is the last", non_empty=True, minimum=1,
                               expected="a non-empty list of positive integers")
    interactions: int = option(1, "message-passing layers on the latent (each extends the "
                               "receptive field by interaction_cutoff; 0: SOAP alone)",
                               minimum=0)
    interaction_cutoff: float | None = option(None, "cutoff of the interaction layers, Å "
                                              "(default: the descriptor cutoff)",
                                              exclusive_minimum=0)
    interaction_products: bool = option(False, "invariants of the interaction densities: "
                                        "channel-mixing inner products and cubic "
                                        "contractions (true) or squared norms (false)")
    interaction_channels: int | None = option(None, "channels of the l >= 1 densities of "
                                              "the interaction layers (default: a quarter "
                                              "of the latent width, at least 4)", minimum=1)
    interaction_max_angular: int = option(2, "highest l of the interaction densities (2 "
                                          "or 3)", minimum=2, maximum=3)
    interaction_radial: int = option(0, "0: radial functions of the interaction layers "
                                     "linear in their Bessel basis; W > 0: a two-layer "
                                     "network of width W", minimum=0)
    interaction_vectors: bool = option(False, "carry K equivariant vectors (l = 1) per "
                                       "atom from each interaction layer to the next, as "
                                       "MACE's 64x1o features (needs interactions >= 2)")
    feature_scaling: str = option("global", "how the invariants are scaled for the "
                                  "networks after their mean is removed: global (all by one "
                                  "spread, the RMS of theirs: keeps the descriptor's "
                                  "metric), per_feature (each by its own training spread: "
                                  "the default before 2026-12-06) or pair (each "
                                  "species-pair block by the RMS spread of its features)",
                                  choices=("per_feature", "global", "pair"))
    species_embedding: int = option(0, "0: one network per species; k > 0: one network "
                                    "shared by all species, fed a learned k-dimensional "
                                    "embedding of the species with the invariants",
                                    minimum=0)
    species: list[int] | None = option(None, "atomic numbers the model handles (default: "
                                       "those of the training data)", minimum=1,
                                       maximum=118)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def composition_baseline(counts: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """[S] eV per atom of each species: the minimum-norm least-squares fit of the
    energies [B] to the compositions [B, S], reproducible to the last bit.

    A LAPACK least-squares solve on the [B, S] matrix can differ in the last bit between
    two processes (its SIMD paths depend on memory alignment), and a resumed training
    must reproduce an uninterrupted one exactly. So the normal equations are formed
    exactly (integer counts; the right-hand side summed with exact rounding, math.fsum)
    and only the tiny [S, S] system is solved.
    """
    c = counts.detach().cpu().numpy().astype(np.float64)
    e = energy.detach().cpu().numpy().astype(np.float64)
    normal = c.T @ c  # integers: exact
    rhs = np.array([math.fsum(column * e) for column in c.T])
    solution = np.linalg.lstsq(normal, rhs, rcond=None)[0]
    return torch.as_tensor(solution, dtype=energy.dtype, device=energy.device)


def species_rows(species_map: torch.Tensor, numbers: torch.Tensor,
                 species: Sequence[int]) -> torch.Tensor:
    """[N] row of each atom's species in ``species`` (``species_map``: atomic number ->
    row, -1 elsewhere); unknown species are an error."""
    index = species_map[numbers.clamp(0, len(species_map) - 1)]
    index = torch.where(numbers < len(species_map), index, -1)
    if (index < 0).any():
        bad = sorted(set(numbers[index < 0].tolist()))
        raise ConfigError(f"atomic numbers {bad} were not in the model's species "
                          f"{list(species)}")
    return index


def composition_counts(rows: torch.Tensor, structure_index: torch.Tensor,
                       n_structures: int, n_species: int, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] number of atoms of each species (``rows`` from :func:`species_rows`) in each
    structure."""
    counts = torch.zeros(n_structures, n_species, dtype=dtype, device=rows.device)
    return counts.index_put((structure_index, rows), torch.ones_like(rows, dtype=dtype),
                            accumulate=True)


def species_of(frames: Sequence[Frame]) -> list[int]:
    """Sorted atomic numbers present in ``frames``."""
    return sorted({int(z) for f in frames for z in np.unique(f.atoms.numbers)})


class Backbone(nn.Module):
    """SOAP invariants -> standardisation -> per-species MLP -> latent h; atomic energies.

    Parameters
    ----------
    species
        atomic numbers the model handles (the descriptor layout depends on them).
    descriptor
        :class:`~fieldforce.descriptors.DescriptorSettings` (its species are replaced).
    hidden
        widths of the per-species networks; the latent width is ``hidden[-1]``.
    interactions, interaction_cutoff, interaction_products
        message-passing layers on the latent, their cutoff (Å; None: the descriptor's)
        and their invariants (:class:`~fieldforce.models.interaction.Interaction`).
    interaction_channels, interaction_max_angular, interaction_radial
        the layers' l >= 1 channel count (None: H/4), highest l (2 or 3) and radial
        network width (0: linear in the Bessel basis).
    interaction_vectors
        equivariant l = 1 features passed from each layer to the next.
    feature_scaling
        ``global`` (default): all invariants divided by one spread; ``per_feature``: each
        by its own training spread; ``pair``: each species-pair block by one
        (:meth:`standardise`).
    species_embedding
        0: one network per species; k > 0: one shared network fed a learned k-vector
        per species with the invariants.
    """

    def __init__(self, species: Sequence[int], descriptor: DescriptorSettings | dict,
                 hidden: Sequence[int], interactions: int = 0,
                 interaction_cutoff: float | None = None,
                 interaction_products: bool = False, species_embedding: int = 0,
                 interaction_channels: int | None = None, interaction_max_angular: int = 2,
                 interaction_radial: int = 0, interaction_vectors: bool = False,
                 feature_scaling: str = "global"):
        super().__init__()
        if feature_scaling not in ("per_feature", "global", "pair"):
            raise ConfigError("model.feature_scaling must be per_feature, global or pair, "
                              f"not {feature_scaling!r}")
        self.feature_scaling = feature_scaling
        if not species:
            raise ConfigError("model.species is empty; give the atomic numbers to model")
        self.species = sorted(int(z) for z in species)
        if isinstance(descriptor, DescriptorSettings):
            descriptor = descriptor.to_dict()
        settings = DescriptorSettings.from_dict({**descriptor, "species": self.species},
                                                prefix="model.descriptor")
        self.features = SOAPFeatures(settings)
        f0 = self.features.n_invariant
        hidden = [int(h) for h in hidden]
        self.width = hidden[-1]
        self.register_buffer("species_map", torch.full((max(self.species) + 1,), -1,
                                                       dtype=torch.long))
        self.species_map[torch.tensor(self.species)] = torch.arange(len(self.species))
        self.species_embedding = int(species_embedding)
        if self.species_embedding:
            self.embedding = nn.Embedding(len(self.species), self.species_embedding)
            self.networks = nn.ModuleList([mlp([f0 + self.species_embedding, *hidden,
                                                self.width])])
        else:
            self.networks = nn.ModuleList(mlp([f0, *hidden, self.width])
                                          for _ in self.species)
        self.energy_head = nn.Linear(self.width, 1)
        self.interaction_cutoff = float(interaction_cutoff or settings.cutoff)
        n_layers = int(interactions)
        if interaction_vectors and n_layers < 2:
            raise ConfigError("model.interaction_vectors passes vectors from one interaction "
                              f"layer to the next: it needs interactions >= 2, not {n_layers}")
        self.interactions = nn.ModuleList(
            Interaction(self.width, self.interaction_cutoff, products=interaction_products,
                        channels=interaction_channels, max_angular=interaction_max_angular,
                        radial=interaction_radial,
                        vectors_in=bool(interaction_vectors) and k > 0,
                        vectors_out=bool(interaction_vectors) and k < n_layers - 1)
            for k in range(n_layers))
        # mean neighbour count within the interaction cutoff (normalises the messages)
        self.register_buffer("neighbors_mean", torch.ones(()))
        self.register_buffer("feature_mean", torch.zeros(f0))
        self.register_buffer("feature_std", torch.ones(f0))
        self.register_buffer("energy_baseline", torch.zeros(len(self.species)))
        self.register_buffer("energy_scale", torch.ones(()))
        # the training domain: per species, the range of each standardised feature
        # (+-inf until fit_statistics: no extrapolation measure)
        self.register_buffer("domain_low", torch.full((len(self.species), f0), -math.inf))
        self.register_buffer("domain_high", torch.full((len(self.species), f0), math.inf))

    @classmethod
    def from_settings(cls, settings: BackboneSettings) -> Backbone:
        """The backbone a family's ``model:`` section describes."""
        return cls(settings.species or [], settings.descriptor, settings.hidden,
                   settings.interactions, settings.interaction_cutoff,
                   settings.interaction_products, settings.species_embedding,
                   settings.interaction_channels, settings.interaction_max_angular,
                   settings.interaction_radial, settings.interaction_vectors,
                   settings.feature_scaling)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files written before the training domain was recorded: leave it unknown
        for name in ("domain_low", "domain_high", "neighbors_mean"):
            state_dict.setdefault(prefix + name, getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def batch_features(self, batch: Batch, equivariant: bool,
                       geometry: FixedGeometry | None = None) -> dict[str, torch.Tensor]:
        """Descriptors of every atom of ``batch`` (see :class:`SOAPFeatures`);
        ``geometry``: the batch's cached geometry work (:meth:`cached_geometry`)."""
        return self.features(batch.positions, batch.numbers, batch.cell, batch.pbc,
                             batch.structure_index, equivariant=equivariant,
                             density=None if geometry is None else geometry.density)

    # -- training cache: the geometries of a training set never move ---------------------

    def geometry_cache(self, frames: Sequence[Frame],
                       budget_bytes: float = GEOMETRY_CACHE_BYTES) -> dict[int, tuple]:
        """featomic's density with its position gradient, and the interaction pairs, of
        each of ``frames``, by ``id(frame)``, until the cache holds ``budget_bytes``
        (later frames are computed every step as usual). A family's ``prepare_training``
        returns it; training then skips featomic and the neighbour search (about 60 % of
        a step on small clusters) with identical results."""
        cache, used = {}, 0
        for frame in frames:
            b = collate([frame])
            density = self.features.fixed_density(b.positions, b.numbers, b.cell, b.pbc,
                                                   b.structure_index)
            used += density.nbytes()
            if used > budget_bytes:
                break
            pairs = self.pairs(b) if len(self.interactions) else None
            cache[id(frame)] = (density, pairs, len(frame.atoms))
        return cache

    @staticmethod
    def cached_geometry(frames: Sequence[Frame], cache: Any) -> FixedGeometry | None:
        """The cached geometry of a batch of ``frames`` (collated in this order) when the
        cache holds every one of them, else None."""
        if not isinstance(cache, dict) or not all(id(f) in cache for f in frames):
            return None
        parts = [cache[id(f)] for f in frames]
        pairs = [p[1] for p in parts]
        return FixedGeometry(FixedDensity.concatenate([p[0] for p in parts]),
                             None if None in pairs else pairs, [p[2] for p in parts])

    def species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """[N] row of each atom's species in ``species``; unknown species are an error."""
        return species_rows(self.species_map, numbers, self.species)

    @torch.no_grad()
    def extrapolation(self, invariant: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """[N] how far each atom's environment lies outside the training data: the largest
        distance of one of its standardised invariants beyond the range that atoms of its
        species covered in training, in units of that feature's training spread (0 inside
        the range). A cheap novelty score: 0 does not prove an environment was seen, a
        value well above 1 says it was not."""
        x = (invariant - self.feature_mean) / self.feature_std
        index = self.species_index(numbers)
        below = self.domain_low[index] - x
        above = x - self.domain_high[index]
        return torch.maximum(below, above).clamp_min(0).amax(-1)

    def standardise(self, invariant: torch.Tensor) -> torch.Tensor:
        """Invariants [N, F0] less the training mean, in units of each one's training
        spread (``per_feature``), of one spread for all, the RMS of theirs (``global``),
        or of one per species-pair block of the power spectrum (``pair``).

        Per feature, the power spectrum's many small, nearly constant components are
        blown up to unit spread, as large as the few that carry the geometry: on the
        water clusters the networks then fit their data 3x better than they generalise.
        One global spread keeps the descriptor's own metric, but shrinks the blocks of
        rare species pairs against the common ones; per block keeps the metric within
        each block and the blocks' balance (issue 13, BENCHMARKS.md)."""
        centred = invariant - self.feature_mean
        if self.feature_scaling == "global":
            return centred / self.feature_std.pow(2).mean().sqrt()
        if self.feature_scaling == "pair":
            size = self.features.block_size
            spread = self.feature_std.view(-1, size).pow(2).mean(1).sqrt()
            return centred / spread.repeat_interleave(size)
        return centred / self.feature_std

    def latent(self, invariant: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """Per-species (or shared) networks: invariants [N, F0] -> latent h [N, H]
        (standardised first)."""
        x = self.standardise(invariant)
        index = self.species_index(numbers)
        if self.species_embedding:
            return self.networks[0](torch.cat([x, self.embedding(index).to(x.dtype)], dim=1))
        h = torch.zeros(x.shape[0], self.width, dtype=x.dtype, device=x.device)
        for s, net in enumerate(self.networks):
            rows = index == s
            if rows.any():
                h = h.index_put((rows,), net(x[rows]))
        return h

    def pairs(self, batch: Batch) -> BatchPairs:
        """Neighbour pairs within the interaction cutoff, differentiable vectors."""
        return BatchPairs(batch.positions, batch.cell, batch.pbc, batch.structure_index,
                          self.interaction_cutoff, self.features._featomic_cell)

    def encode(self, batch: Batch, invariant: torch.Tensor,
               geometry: FixedGeometry | None = None) -> torch.Tensor:
        """The latent [N, H]: per-species networks, then the interaction layers
        (``geometry``: the batch's cached pairs, if any)."""
        h = self.latent(invariant, batch.numbers)
        if len(self.interactions):
            if geometry is not None and geometry.pairs is not None:
                pairs = BatchPairs.stacked(geometry.pairs, geometry.sizes, batch.positions)
            else:
                pairs = self.pairs(batch)
            vectors = None
            for layer in self.interactions:
                h, vectors = layer(h, pairs, self.neighbors_mean, vectors)
        return h

    def atomic_energy(self, h: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """e_i = s_E e(h_i) + b(Z_i), [N] eV."""
        return (self.energy_scale * self.energy_head(h)[:, 0]
                + self.energy_baseline[self.species_index(numbers)])

    def composition(self, batch: Batch) -> torch.Tensor:
        """[B, S] number of atoms of each species in each structure."""
        return composition_counts(self.species_index(batch.numbers), batch.structure_index,
                                  batch.n_structures, len(self.species), batch.positions.dtype)

    @torch.no_grad()
    def fit_statistics(self, batch: Batch, invariant: torch.Tensor | None = None) -> None:
        """Feature standardisation, composition baseline and energy scale from ``batch``.

        ``invariant``: the batch's invariant features, if already computed. The
        energy scale is the larger of the per-atom residual energy spread (after the
        baseline) and the force spread (eV/Å x 1 Å), at least 1 meV.
        """
        x = self.batch_features(batch, equivariant=False)["invariant"] if invariant is None \
            else invariant
        std = x.std(0) if x.shape[0] > 1 else torch.ones_like(x[0])
        self.feature_mean.copy_(x.mean(0))
        self.feature_std.copy_(std.clamp_min(1e-3 * float(std.max())).clamp_min(1e-12))
        standard = (x - self.feature_mean) / self.feature_std
        index = self.species_index(batch.numbers)
        for s in range(len(self.species)):
            rows = standard[index == s]
            if len(rows):
                self.domain_low[s].copy_(rows.amin(0))
                self.domain_high[s].copy_(rows.amax(0))
            else:  # a species the training data never showed: every environment is new
                self.domain_low[s].fill_(math.inf)
                self.domain_high[s].fill_(-math.inf)
        if len(self.interactions):
            pairs = self.pairs(batch)
            self.neighbors_mean.copy_(torch.tensor(max(len(pairs.i) / len(batch.numbers),
                                                       1.0)))
        if "energy" not in batch.labels:
            return
        counts = self.composition(batch)
        mask = batch.label_mask["energy"]
        energy = batch.labels["energy"][mask]
        solution = composition_baseline(counts[mask], energy)
        self.energy_baseline.copy_(solution)
        residual = (energy - counts[mask] @ solution) / counts[mask].sum(1)
        spread = residual.std() if len(residual) > 1 else torch.tensor(0.0)
        forces = batch.labels.get("forces")
        if forces is not None and batch.atom_mask("forces").any():
            spread = torch.maximum(spread, forces[batch.atom_mask("forces")].std())
        self.energy_scale.copy_(spread.clamp_min(1e-3))
