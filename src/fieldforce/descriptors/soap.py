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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fieldforce.descriptors.settings import DescriptorSettings
from fieldforce.descriptors.spherical import L1_TO_XYZ
from fieldforce.errors import ConfigError


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
        from featomic.torch.clebsch_gordan import EquivariantPowerSpectrum
        from metatensor.torch import Labels

        if settings is None:
            settings = DescriptorSettings()
        elif not isinstance(settings, DescriptorSettings):
            settings = DescriptorSettings.from_dict(settings)
        self.settings = settings
        hypers = settings.featomic_hypers()
        species = settings.species
        self._power_spectrum = featomic_torch.SoapPowerSpectrum(**hypers)
        self._lambda_soap = EquivariantPowerSpectrum(
            featomic_torch.SphericalExpansion(**hypers),
            neighbor_types=species,
            dtype=torch.float64,
        )
        # proper tensors only: lambda-SOAP with o3_sigma = -1 are pseudo-tensors
        self._equivariant_keys = Labels(
            ["o3_lambda", "o3_sigma"], torch.tensor([[1, 1], [2, 1]], dtype=torch.int32)
        )
        pairs = [(a, b) for i, a in enumerate(species) for b in species[i:]]
        self._pair_index = {pair: k for k, pair in enumerate(pairs)}
        self._block_size = (settings.max_angular + 1) * (settings.max_radial + 1) ** 2
        self.n_invariant = len(pairs) * self._block_size
        self.n_vector, self.n_tensor = self._equivariant_sizes()

    def _equivariant_sizes(self) -> tuple[int, int]:
        """Property counts of the lambda = 1, 2 blocks, from featomic's metadata."""
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
        sizes = {int(k["o3_lambda"]): len(b.properties) for k, b in meta.items()}
        return sizes[1], sizes[2]

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

        Returns
        -------
        dict with ``invariant`` [N, F0], and with ``equivariant``: ``vector``
        [N, 3, F1] (Cartesian x, y, z) and ``tensor`` [N, 5, F2] (m = -2..2). All
        dimensionless, in the dtype of ``positions``.
        """
        unknown = set(torch.unique(numbers).tolist()) - set(self.settings.species)
        if unknown:
            raise ConfigError(
                f"atomic numbers {sorted(unknown)} are not in the descriptor species list "
                f"{self.settings.species}; add them to the descriptor settings."
            )
        dtype, device = positions.dtype, positions.device
        systems, order = self._systems(
            positions.to(torch.float64),
            numbers,
            cell.to(torch.float64),
            pbc,
            structure_index,
        )
        # row of (system, atom) in the batch: system offset + atom index, mapped by order
        offsets = torch.zeros(len(systems) + 1, dtype=torch.int64, device=positions.device)
        offsets[1:] = torch.cumsum(torch.tensor([len(s) for s in systems]), 0)
        n_atoms = positions.shape[0]

        def rows(samples: torch.Tensor) -> torch.Tensor:
            return order[offsets[samples[:, 0].long()] + samples[:, 1].long()]

        scale = 1.0 / self.settings.feature_scale
        spectrum = self._power_spectrum.compute(systems)
        n_pairs = len(self._pair_index)
        invariant = torch.zeros(
            n_atoms, n_pairs, self._block_size, dtype=torch.float64, device=positions.device
        )
        for key, block in spectrum.items():
            pair = self._pair_index[(int(key["neighbor_1_type"]), int(key["neighbor_2_type"]))]
            index = rows(block.samples.values)
            column = torch.full_like(index, pair)
            invariant = invariant.index_put((index, column), block.values)
        result = {"invariant": (scale * invariant.reshape(n_atoms, -1)).to(dtype)}
        if not equivariant:
            return result

        spectrum = self._lambda_soap.compute(
            systems, selected_keys=self._equivariant_keys, neighbors_to_properties=True
        )
        vector = torch.zeros(n_atoms, 3, self.n_vector, dtype=torch.float64, device=device)
        tensor = torch.zeros(n_atoms, 5, self.n_tensor, dtype=torch.float64, device=device)
        for key, block in spectrum.items():
            index = rows(block.samples.values)
            if int(key["o3_lambda"]) == 1:
                vector = vector.index_put((index,), block.values[:, L1_TO_XYZ])
            else:
                tensor = tensor.index_put((index,), block.values)
        result["vector"] = (scale * vector).to(dtype)
        result["tensor"] = (scale * tensor).to(dtype)
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
