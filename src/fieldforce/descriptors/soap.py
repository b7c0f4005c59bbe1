"""SOAP and lambda-SOAP atomic descriptors (featomic), differentiable by autograd.

:class:`SOAPFeatures` turns a batch (positions, atomic numbers, cells, pbc,
structure index) into per-atom tensors:

* ``invariant`` [N, F0]: the SOAP power spectrum (lambda = 0);
* ``vector`` [N, 3, F1]: lambda-SOAP with lambda = 1, Cartesian (x, y, z) order, so a
  rotation R of the structure maps each feature column v to R v;
* ``tensor`` [N, 5, F2]: lambda-SOAP with lambda = 2, real spherical components
  m = -2..2; :func:`spherical_to_cartesian_l2` gives the symmetric traceless
  Cartesian tensors T that rotate as R T R^T.

The calculators are featomic.torch ones, so the features are differentiable with
respect to the positions and the cell by autograd (forces, stress, Born charges).
The feature layout depends only on :class:`DescriptorSettings` (the species list is
fixed), never on which species a batch happens to contain. The species of the
central atom is not encoded in the features: models use the atomic numbers for
that. Only proper (o3_sigma = +1) equivariants are kept, so vectors are polar and
change sign under inversion. Features are dimensionless and divided by
``feature_scale`` to keep them O(1).

With ``species_channels`` = K the T species densities are mixed into K channels by a
learned [T, K] matrix (``species_mixing``, a parameter of the module, trained with the
model) before the products: the invariants then number K (K + 1) / 2 blocks instead of
T (T + 1) / 2, and the lambda-SOAP columns are in the module's own order (channels are
not featomic's species).

The lambda-SOAP values are featomic's (``EquivariantPowerSpectrum`` with the
neighbour types moved to properties, o3_sigma = +1): the same spherical expansion,
the same Clebsch-Gordan coefficients (``calculate_cg_coefficients``) and the same
property order (read from its metadata once, at construction). Only the products are
taken here, as a few dense einsums over all atoms at once, because featomic rebuilds
the product's metadata labels on every call in Python: that cost 90 % of a 9-atom
step in a field (tests/test_descriptors.py checks equality with featomic).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from fieldforce.descriptors.fixed_density import FixedDensity
from fieldforce.descriptors.settings import DescriptorSettings
from fieldforce.descriptors.spherical import L1_TO_XYZ
from fieldforce.errors import ConfigError, DataError
from fieldforce.neighbors import MAX_SPAN


def _initial_mixing(n_species: int, n_channels: int) -> torch.Tensor:
    """[T, K] starting species mixing: channel 0 the species-blind total density (all
    ones), the others fixed pseudo-random (seed 0, independent of the global RNG, so a
    model's features do not depend on what was drawn before it), unit-norm columns."""
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(n_species, n_channels, generator=generator, dtype=torch.float64)
    mixing[:, 0] = 1.0
    return mixing / mixing.norm(dim=0, keepdim=True)


class SOAPFeatures(torch.nn.Module):
    """Per-atom SOAP power spectrum and lambda-SOAP (lambda = 1, 2) features.

    Parameters
    ----------
    settings
        :class:`DescriptorSettings` or a mapping accepted by its ``from_dict``.

    Attributes
    ----------
    n_invariant, n_vector, n_tensor
        Feature counts F0, F1, F2 (fixed by the settings).
    """

    def __init__(self, settings: DescriptorSettings | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        import featomic.torch as featomic_torch
        from featomic.torch.clebsch_gordan import (
            EquivariantPowerSpectrum,
            calculate_cg_coefficients,
        )
        from metatensor.torch import Labels

        if settings is None:
            settings = DescriptorSettings()
        elif not isinstance(settings, DescriptorSettings):
            settings = DescriptorSettings.from_dict(settings)
        self.settings = settings
        hypers = settings.featomic_hypers()
        species = settings.species
        self._power_spectrum = featomic_torch.SoapPowerSpectrum(**hypers)
        self._spherical_expansion = featomic_torch.SphericalExpansion(**hypers)
        # lambda-SOAP from the unweighted density where the radial scaling is for the
        # invariants only (radial_scaling_scope: invariant)
        self._equivariant_expansion = (
            featomic_torch.SphericalExpansion(**settings.featomic_hypers(scaled=False))
            if settings.separate_equivariant_density else None)
        # only the product's metadata is read from it (_product_plan), which depends on
        # l_max and the radial count alone: the splined Bessel hypers lack the max_angular
        # it looks for, so it gets the GTO calculator of the same sizes
        layout = (self._spherical_expansion if settings.radial_basis == "gto" else
                  featomic_torch.SphericalExpansion(**DescriptorSettings(
                      **{**settings.to_dict(), "radial_basis": "gto"}).featomic_hypers()))
        self._lambda_soap = EquivariantPowerSpectrum(
            layout,
            neighbor_types=species,
            dtype=torch.float64,
        )
        # proper tensors only: lambda-SOAP with o3_sigma = -1 are pseudo-tensors
        self._equivariant_keys = Labels(
            ["o3_lambda", "o3_sigma"], torch.tensor([[1, 1], [2, 1]], dtype=torch.int32)
        )
        self._type_index = {z: k for k, z in enumerate(species)}
        # the density's neighbour channels: one per species, or K learned mixtures
        n_channels = settings.species_channels or len(species)
        if settings.species_channels is not None:
            self.species_mixing = torch.nn.Parameter(_initial_mixing(len(species), n_channels))
        else:
            self.species_mixing = None
        # channel pairs (i <= j) in the order of the invariant blocks (featomic's for species)
        self._pairs = [(i, j) for i in range(n_channels) for j in range(i, n_channels)]
        # invariants per channel pair: the power spectrum is n_pairs contiguous blocks
        self.block_size = (settings.max_angular + 1) * (settings.max_radial + 1) ** 2
        self.n_invariant = len(self._pairs) * self.block_size
        cg = calculate_cg_coefficients(2 * settings.max_angular, "python-dense", "torch",
                                       torch.float64, torch.device("cpu"))
        self._products = self._product_plan(cg)
        self.n_vector = self._products[1][0].numel()
        self.n_tensor = self._products[2][0].numel()

    def _product_plan(self, cg) -> dict[int, tuple[torch.Tensor, list]]:
        """Per lambda = 1, 2: the (l1, l2) products featomic forms, each with its signed
        CG array [2l1+1, 2l2+1, 2lambda+1], and the permutation that puts their columns
        (l1, l2, type_1, n_1, type_2, n_2: row-major over l-pairs, then the Cartesian
        product of the (type, n) properties) in featomic's property order."""
        from metatensor.torch import Labels
        from metatomic.torch import System

        dummy = System(
            types=torch.tensor([self.settings.species[0]], dtype=torch.int32),
            positions=torch.zeros(1, 3, dtype=torch.float64),
            cell=torch.zeros(3, 3, dtype=torch.float64),
            pbc=torch.zeros(3, dtype=torch.bool),
        )
        meta = self._lambda_soap.compute_metadata(
            [dummy], selected_keys=self._equivariant_keys, neighbors_to_properties=True
        )
        n_radial = self.settings.max_radial + 1
        density = [(z, n) for z in self.settings.species for n in range(n_radial)]
        mixed = self.species_mixing is not None
        plan = {}
        for key, block in meta.items():
            lam = int(key["o3_lambda"])
            names = block.properties.names
            assert names == ["l_1", "l_2", "neighbor_1_type", "n_1", "neighbor_2_type", "n_2"]
            column = {tuple(row): k for k, row in enumerate(block.properties.values.tolist())}
            pairs = sorted({(row[0], row[1]) for row in column})
            order, products = [], []
            for l1, l2 in pairs:
                coefficients = cg.block(Labels(["l1", "l2", "lambda"],
                                               torch.tensor([[l1, l2, lam]])))
                products.append((l1, l2, (-1) ** (l1 + l2 + lam)
                                 * coefficients.values[0, ..., 0].clone()))
                if not mixed:
                    order += [column[(l1, l2, *a, *b)] for a in density for b in density]
            if mixed:
                # mixed channels are not featomic's species: our own order, (l1, l2), then
                # (channel_1, n_1) x (channel_2, n_2)
                columns = self.settings.species_channels * n_radial
                plan[lam] = (torch.arange(len(pairs) * columns**2), products)
                continue
            # ours -> featomic's: position k of the output holds our column inverse[k]
            inverse = torch.empty(len(order), dtype=torch.long)
            inverse[torch.tensor(order)] = torch.arange(len(order))
            plan[lam] = (inverse, products)
        return plan

    def _density(self, systems, rows, n_atoms: int, device, with_gradient: bool = False,
                 calculator=None) -> dict[int, torch.Tensor] | FixedDensity:
        """featomic's spherical expansion (``calculator``, default the invariants' one) as
        dense tensors: l -> [N, 2l+1, T, n_max+1] (T: the species list; zero where a
        species has no neighbours). With ``with_gradient``: a :class:`FixedDensity`
        holding featomic's explicit position gradients too (no autograd graph)."""
        expansion = (calculator or self._spherical_expansion).compute(
            systems, gradients=["positions"] if with_gradient else None)
        n_types, n_radial = len(self._type_index), self.settings.max_radial + 1
        density = {l: torch.zeros(n_atoms, 2 * l + 1, n_types, n_radial,
                                  dtype=torch.float64, device=device)
                   for l in range(self.settings.max_angular + 1)}
        parts: dict[str, dict[int, list]] = {"centre": {}, "neighbour": {}, "gradient": {}}
        for key, block in expansion.items():
            l, t = int(key["o3_lambda"]), self._type_index[int(key["neighbor_type"])]
            index = rows(block.samples.values)
            m = torch.arange(2 * l + 1, device=device)
            density[l] = density[l].index_put(
                (index[:, None], m[None, :], torch.tensor(t, device=device)), block.values)
            if with_gradient:
                gradient = block.gradient("positions")
                samples = gradient.samples.values
                parts["centre"].setdefault(l, []).append(index[samples[:, 0].long()] * n_types
                                                         + t)
                parts["neighbour"].setdefault(l, []).append(rows(samples[:, 1:]))
                parts["gradient"].setdefault(l, []).append(gradient.values)
        if not with_gradient:
            return density
        empty = {"centre": torch.zeros(0, dtype=torch.long, device=device),
                 "neighbour": torch.zeros(0, dtype=torch.long, device=device)}
        joined = {}
        for name, per_l in parts.items():
            joined[name] = {}
            for l in density:
                if per_l.get(l):
                    joined[name][l] = torch.cat(per_l[l])
                elif name == "gradient":
                    joined[name][l] = torch.zeros(0, 3, 2 * l + 1, n_radial,
                                                  dtype=torch.float64, device=device)
                else:
                    joined[name][l] = empty[name]
        return FixedDensity(values=density, **joined)

    def _mix(self, density: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """The density on the neighbour channels: l -> [N, 2l+1, K, n_max+1] (the species
        density itself without ``species_channels``)."""
        if self.species_mixing is None:
            return density
        mixing = self.species_mixing.to(density[0])
        return {l: torch.einsum("imtn,tk->imkn", c, mixing) for l, c in density.items()}

    def _power_spectrum_values(self, density: dict[int, torch.Tensor]) -> torch.Tensor:
        """[N, F0] featomic's SoapPowerSpectrum from the density: per channel pair
        (a <= b: species, or mixed channels), per l, per (n1, n2): (-1)^l / sqrt(2l+1)
        sum_m c^a_{lmn1} c^b_{lmn2}, times sqrt(2) for a != b (featomic's conventions;
        checked against it in tests/test_descriptors.py)."""
        n_atoms = density[0].shape[0]
        blocks = []
        for i, j in self._pairs:
            factor = math.sqrt(2.0) if i != j else 1.0
            for l, c in density.items():
                value = (c[:, :, i, :].transpose(1, 2) @ c[:, :, j, :]).reshape(n_atoms, -1)
                blocks.append(value * (factor * (-1) ** l / math.sqrt(2 * l + 1)))
        return torch.cat(blocks, dim=-1)

    def _lambda_soap_values(self, density: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """lambda-SOAP [N, 2 lambda + 1, F_lambda] for lambda = 1, 2, featomic's layout."""
        n_atoms = density[0].shape[0]
        flat = {l: d.reshape(n_atoms, 2 * l + 1, -1) for l, d in density.items()}
        out = {}
        for lam, (inverse, products) in self._products.items():
            parts = [self._couple(flat[l1], flat[l2], c) for l1, l2, c in products]
            out[lam] = torch.cat(parts, dim=-1)[..., inverse]
        return out

    @staticmethod
    def _couple(first: torch.Tensor, second: torch.Tensor, cg: torch.Tensor) -> torch.Tensor:
        """sum_{a,b} C[a, b, m] first[i, a, p] second[i, b, q] -> [i, m, p * q], as two
        matrix products (einsum's outer product first is several times slower, backward
        included)."""
        n, la, p = first.shape
        lb, lm = cg.shape[1], cg.shape[2]
        q = second.shape[2]
        half = (first.transpose(1, 2) @ cg.reshape(la, lb * lm)).reshape(n, p, lb, lm)
        half = half.permute(0, 3, 1, 2).reshape(n, lm * p, lb)
        return (half @ second).reshape(n, lm, p * q)

    def _batch_densities(self, positions, numbers, cell, pbc, structure_index,
                         with_gradient: bool = False, equivariant: bool = True):
        """:meth:`_density` of a batch (rows in the batch's atom order): the density, and
        the lambda-SOAP's own one where the radial scaling is for the invariants only and
        ``equivariant`` asks for them (else None: the lambda-SOAP use the first)."""
        systems, order = self._systems(positions.to(torch.float64), numbers,
                                       cell.to(torch.float64), pbc, structure_index)
        # row of (system, atom) in the batch: system offset + atom index, mapped by order
        offsets = torch.zeros(len(systems) + 1, dtype=torch.int64, device=positions.device)
        offsets[1:] = torch.cumsum(torch.tensor([len(s) for s in systems]), 0)

        def rows(samples: torch.Tensor) -> torch.Tensor:
            return order[offsets[samples[:, 0].long()] + samples[:, 1].long()]

        density = self._density(systems, rows, positions.shape[0], positions.device,
                                with_gradient=with_gradient)
        if not equivariant or self._equivariant_expansion is None:
            return density, None
        return density, self._density(systems, rows, positions.shape[0], positions.device,
                                      with_gradient=with_gradient,
                                      calculator=self._equivariant_expansion)

    @torch.no_grad()
    def fixed_density(self, positions: torch.Tensor, numbers: torch.Tensor,
                      cell: torch.Tensor, pbc: torch.Tensor,
                      structure_index: torch.Tensor) -> FixedDensity:
        """The batch's :class:`FixedDensity` (arguments as :meth:`forward`), to pass back
        as ``density`` while the atoms stay where they are."""
        self._check_species(numbers)
        density, own = self._batch_densities(positions.detach(), numbers, cell.detach(),
                                             pbc, structure_index, with_gradient=True)
        density.equivariant = own
        return density

    def _check_species(self, numbers: torch.Tensor) -> None:
        unknown = set(torch.unique(numbers).tolist()) - set(self.settings.species)
        if unknown:
            raise ConfigError(
                f"atomic numbers {sorted(unknown)} are not in the descriptor species list "
                f"{self.settings.species}; add them to the descriptor settings."
            )

    def _systems(
        self,
        positions: torch.Tensor,
        numbers: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        structure_index: torch.Tensor,
    ) -> tuple[list[Any], torch.Tensor]:
        """metatomic Systems (one per structure) and each atom's row in the batch."""
        from metatomic.torch import System

        n_structures = cell.shape[0]
        order = torch.argsort(structure_index, stable=True)
        counts = torch.bincount(structure_index, minlength=n_structures).tolist()
        systems = []
        split_positions = torch.split(positions[order], counts)
        split_numbers = torch.split(numbers[order], counts)
        for b, (pos, z) in enumerate(zip(split_positions, split_numbers, strict=True)):
            box, periodic = self._featomic_cell(cell[b], pbc[b].to(torch.bool), pos)
            systems.append(System(types=z.to(torch.int32), positions=pos, cell=box, pbc=periodic))
        return systems, order

    def _featomic_cell(
        self, cell: torch.Tensor, periodic: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell and pbc that featomic accepts for one structure.

        featomic wants a zero cell when no direction is periodic and cannot handle
        mixed pbc (slabs, wires). There, each non-periodic lattice vector is replaced
        by a vector normal to the periodic ones, longer than the atoms' extent plus
        the cutoff, so no periodic image enters any neighbourhood. The features do not
        depend on that vector, so it is a constant for autograd (no gradient flows
        through the non-periodic directions, as it should).

        featomic's cell list divides by zero once that vector is ~10^5 cutoffs long (a
        slab with an atom evaporated 6·10^5 Å into the vacuum); beyond
        :data:`~fieldforce.neighbors.MAX_SPAN` cutoffs this raises a :class:`DataError`
        naming the atom instead.
        """
        if not bool(periodic.any()):
            return torch.zeros_like(cell), periodic
        if bool(periodic.all()):
            return cell, periodic
        # rows of vh past the rank of the periodic vectors span their normal space
        _, _, vh = torch.linalg.svd(cell[periodic].detach(), full_matrices=True)
        normals = vh[int(periodic.sum()) :]
        extent = positions.detach() @ normals.T
        lengths = extent.max(0).values - extent.min(0).values + self.settings.cutoff + 1.0
        if float(lengths.max()) > MAX_SPAN * self.settings.cutoff:
            along = extent[:, int(lengths.argmax())]
            far = int((along - along.median()).abs().argmax())
            raise DataError(
                f"atom {far} lies {float((along[far] - along.median()).abs()):.3g} Å from "
                f"the others along the non-periodic direction, beyond the "
                f"{MAX_SPAN * self.settings.cutoff:.3g} Å the descriptor can bin; remove "
                "atoms that have left the structure (e.g. evaporated ones)", key="pos")
        padding = torch.zeros_like(cell)
        padding[~periodic] = normals * lengths[:, None]
        mask = periodic.to(cell.dtype)[:, None]
        return cell * mask + padding, torch.ones_like(periodic)

    def forward(
        self,
        positions: torch.Tensor,
        numbers: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        structure_index: torch.Tensor,
        equivariant: bool = True,
        density: FixedDensity | None = None,
    ) -> dict[str, torch.Tensor]:
        """Features of every atom of the batch, rows in the batch's atom order.

        Parameters
        ----------
        positions
            [N, 3] Å (may require grad).
        numbers
            [N] int64 atomic numbers, all in ``settings.species``.
        cell
            [B, 3, 3] Å, rows are lattice vectors (may require grad; ignored along
            non-periodic directions).
        pbc
            [B, 3] bool.
        structure_index
            [N] int64, structure of each atom.
        equivariant
            compute the lambda = 1, 2 features too (skip them for invariant models).
        density
            the batch's density from :meth:`fixed_density` (same atoms, same positions):
            featomic is not called, the cell gets no gradient.

        Returns
        -------
        dict with ``invariant`` [N, F0], and with ``equivariant``: ``vector``
        [N, 3, F1] (Cartesian x, y, z) and ``tensor`` [N, 5, F2] (m = -2..2). All
        dimensionless, in the dtype of ``positions``.
        """
        self._check_species(numbers)
        dtype = positions.dtype
        if density is None:
            density, own = self._batch_densities(positions, numbers, cell, pbc,
                                                 structure_index, equivariant=equivariant)
        else:
            if density.n_atoms != positions.shape[0]:
                raise ValueError(f"the fixed density holds {density.n_atoms} atoms, the "
                                 f"batch {positions.shape[0]}")
            if (self._equivariant_expansion is None) != (density.equivariant is None):
                raise ValueError("the fixed density was not made by these features "
                                 "(radial_scaling_scope differs)")
            own = (density.equivariant.at(positions)
                   if equivariant and density.equivariant is not None else None)
            density = density.at(positions)
        density = self._mix(density)
        scale = 1.0 / self.settings.feature_scale
        result = {"invariant": (scale * self._power_spectrum_values(density)).to(dtype)}
        if not equivariant:
            return result
        values = self._lambda_soap_values(density if own is None else self._mix(own))
        result["vector"] = (scale * values[1][:, L1_TO_XYZ]).to(dtype)
        result["tensor"] = (scale * values[2]).to(dtype)
        return result

    def featurize(
        self, batch: Mapping[str, torch.Tensor], equivariant: bool = True
    ) -> dict[str, torch.Tensor]:
        """:meth:`forward` on a batch mapping with keys ``positions``, ``numbers``,
        ``cell``, ``pbc`` and ``structure_index``."""
        return self(
            batch["positions"],
            batch["numbers"],
            batch["cell"],
            batch["pbc"],
            batch["structure_index"],
            equivariant=equivariant,
        )
