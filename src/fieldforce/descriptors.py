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

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from fieldforce.errors import ConfigError

# Legacy (rascaline / featomic < 0.6) spellings accepted in configuration files.
_ALIASES = {
    "radius": "cutoff",
    "cutoff_radius": "cutoff",
    "atomic_gaussian_width": "density_width",
    "cutoff_smoothing_width": "smoothing_width",
}


@dataclass
class DescriptorSettings:
    """Hyper-parameters of the SOAP / lambda-SOAP descriptors.

    Attributes
    ----------
    cutoff
        Cutoff radius in Å (featomic ``cutoff.radius``).
    smoothing_width
        Width in Å of the shifted-cosine smoothing at the cutoff
        (featomic ``cutoff.smoothing.width``).
    density_width
        Width in Å of the Gaussian atomic densities (featomic ``density.width``;
        ``atomic_gaussian_width`` in older versions).
    max_radial
        Largest radial (GTO) index; there are ``max_radial + 1`` radial functions
        (featomic ``basis.radial.max_radial``).
    max_angular
        Largest angular channel l of the density expansion (``basis.max_angular``).
    species
        Atomic numbers the features are resolved on; fixes the feature layout.
    feature_scale
        Every feature is divided by this constant (dimensionless). featomic's
        densities are already normalised: with the defaults, liquid water gives
        invariants up to about 1.6 (per-atom norm about 3.6) and lambda-SOAP
        components up to about 0.5, so 1.0 keeps them O(1); raise it for much denser
        environments or larger cutoffs.
    """

    cutoff: float = 4.5
    smoothing_width: float = 0.5
    density_width: float = 0.3
    max_radial: int = 6
    max_angular: int = 4
    species: list[int] = field(default_factory=lambda: [1, 8])
    feature_scale: float = 1.0

    def __post_init__(self) -> None:
        self.species = sorted({int(z) for z in self.species})
        if not self.species or any(z < 1 or z > 118 for z in self.species):
            raise ConfigError(
                f"descriptor species must be a non-empty list of atomic numbers 1-118, "
                f"got {self.species}."
            )
        if self.cutoff <= 0 or self.density_width <= 0 or self.feature_scale <= 0:
            raise ConfigError("descriptor cutoff, density_width and feature_scale must be > 0.")
        if not 0 <= self.smoothing_width < self.cutoff:
            raise ConfigError("descriptor smoothing_width must be in [0, cutoff).")
        if self.max_radial < 0 or self.max_angular < 2:
            raise ConfigError(
                "descriptor max_radial must be >= 0 and max_angular >= 2 "
                "(lambda = 2 features need l up to 2)."
            )

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> DescriptorSettings:
        """Settings from a (YAML) mapping; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in config.items():
            name = _ALIASES.get(key, key)
            if name not in known:
                raise ConfigError(
                    f"unknown descriptor setting '{key}'; expected one of "
                    f"{', '.join(sorted(known))}."
                )
            values[name] = value
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"bad descriptor settings {dict(config)}: {error}.") from error

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (YAML-friendly) that :meth:`from_dict` reads back."""
        return dataclasses.asdict(self)

    def featomic_hypers(self) -> dict[str, Any]:
        """Hyper-parameters in featomic's (>= 0.6) format for SOAP calculators."""
        return {
            "cutoff": {
                "radius": float(self.cutoff),
                "smoothing": {"type": "ShiftedCosine", "width": float(self.smoothing_width)},
            },
            "density": {"type": "Gaussian", "width": float(self.density_width)},
            "basis": {
                "type": "TensorProduct",
                "max_angular": int(self.max_angular),
                "radial": {"type": "Gto", "max_radial": int(self.max_radial)},
            },
        }


# featomic's real spherical harmonics of l = 1 are ordered (y, z, x).
_L1_TO_XYZ = [2, 0, 1]


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
                vector = vector.index_put((index,), block.values[:, _L1_TO_XYZ])
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
