"""The spherical expansion of geometries that do not move, computed once for training.

A training set's geometries are fixed, so featomic's density and its position gradient
are computed once per frame (``SOAPFeatures.fixed_density`` in
:mod:`fieldforce.descriptors.soap`) and every optimizer step rebuilds the density from
them (:meth:`FixedDensity.at`), differentiable in the positions to first order: what
forces, dipoles and Born charges in the loss need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class FixedDensity:
    """featomic's spherical expansion of fixed geometries with its position gradient,
    for training: the geometries of a training set never move, so featomic runs once
    per frame instead of once per optimizer step.

    :meth:`at` returns the density as ``values + J (x - x0)`` with ``x0`` the positions
    it was computed at, evaluated at ``x = x0``: the value is featomic's and the first
    derivative with respect to the positions is featomic's J exactly, which is all
    training on forces, dipoles or Born charges needs (d(forces)/d(parameters) does not
    involve second position derivatives of the density; featomic-torch does not give
    them either). Not for stress (no cell gradient) nor for moving atoms.

    Attributes (per l = 0..l_max)
    ----------
    values
        l -> [N, 2l+1, T, n_max+1] the density (layout of ``SOAPFeatures._density``).
    centre
        l -> [G] ``row * T + type`` of the density entry each gradient row belongs to.
    neighbour
        l -> [G] row of the atom whose displacement the gradient row is for.
    gradient
        l -> [G, 3, 2l+1, n_max+1] d(density)/d(position of ``neighbour``), 1/Å.
    equivariant
        the density the lambda-SOAP are built from where it is not this one (a radial
        scaling on the invariants only), else None.
    """

    values: dict[int, torch.Tensor]
    centre: dict[int, torch.Tensor]
    neighbour: dict[int, torch.Tensor]
    gradient: dict[int, torch.Tensor]
    equivariant: FixedDensity | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.values[0].shape[0])

    def nbytes(self) -> int:
        own = sum(t.numel() * t.element_size()
                  for part in (self.values, self.centre, self.neighbour, self.gradient)
                  for t in part.values())
        return own + (self.equivariant.nbytes() if self.equivariant is not None else 0)

    @staticmethod
    def concatenate(parts: Sequence[FixedDensity]) -> FixedDensity:
        """One density for structures stacked in the order of ``parts`` (as collate)."""
        offsets = [0]
        for part in parts:
            offsets.append(offsets[-1] + part.n_atoms)
        out: dict[str, dict[int, torch.Tensor]] = {
            "values": {}, "centre": {}, "neighbour": {}, "gradient": {}}
        for l in parts[0].values:
            types = parts[0].values[l].shape[2]
            out["values"][l] = torch.cat([p.values[l] for p in parts])
            out["gradient"][l] = torch.cat([p.gradient[l] for p in parts])
            out["centre"][l] = torch.cat([p.centre[l] + types * o
                                          for p, o in zip(parts, offsets, strict=False)])
            out["neighbour"][l] = torch.cat([p.neighbour[l] + o
                                             for p, o in zip(parts, offsets, strict=False)])
        equivariant = (None if parts[0].equivariant is None else
                       FixedDensity.concatenate([p.equivariant for p in parts]))
        return FixedDensity(**out, equivariant=equivariant)

    def at(self, positions: torch.Tensor) -> dict[int, torch.Tensor]:
        """The density at ``positions`` [N, 3] (equal to the ones it was computed at),
        differentiable with respect to them."""
        displacement = (positions - positions.detach()).to(torch.float64)
        out = {}
        for l, values in self.values.items():
            n, m, types, radial = values.shape
            change = torch.einsum("gxmr,gx->gmr", self.gradient[l],
                                  displacement[self.neighbour[l]])
            flat = values.transpose(1, 2).reshape(n * types, m, radial)
            flat = flat.index_add(0, self.centre[l], change)
            out[l] = flat.reshape(n, types, m, radial).transpose(1, 2)
        return out


__all__ = ["FixedDensity"]
