"""The backbone's receptive field: message passing on densities of the neighbours' latents.

The SOAP power spectrum sees each atom's neighbours within the descriptor cutoff, three
at a time (body order 3). One interaction layer (``model.interactions`` of them, 0 by
default in old model files) lets atom i see its neighbours' *latents* h_j, each of
which already describes j's own environment, so the receptive field grows by the
interaction cutoff r_c per layer and the body order rises. Per layer, for l = 0, 1, 2:

    A_i^{(l)}_c = 1/n_avg sum_{j != i, r_ij < r_c} R^{(l)}_c(r_ij) Y^{(l)}(r̂_ij) (W^{(l)} h_j)_c

with R^{(l)} a learned linear map of Bessel functions sin(k pi r / r_c) / r (k = 1..n_b)
times a smooth cosine cutoff, Y^{(0)} = 1, Y^{(1)} = r̂ (a vector), Y^{(2)} the five
real l = 2 harmonics of r̂ (the components of r̂ r̂^T - I/3 in an orthonormal basis), and
n_avg the mean neighbour count of the training data; H channels for l = 0 and K = H/4
(at least 4; ``channels`` sets it) for l = 1, 2, which cost 3 and 5 times more per
channel. The rotation invariants of these densities, A^{(0)} itself and the squared
norms |A^{(1)}_c|², |A^{(2)}_c|², update the latent:

    h_i <- h_i + U([h_i, A^{(0)}_i, |A^{(1)}_i|², |A^{(2)}_i|²])

Two options bring the layer closer to MACE's (issue 13 measures whether they help):
``max_angular = 3`` adds an l = 3 density (the seven real harmonics, K channels) and its
squared norms; ``radial = W > 0`` makes R^{(l)} a two-layer network (width W) of the
Bessel functions, times the same cosine cutoff, instead of a linear map.

With ``products`` (``model.interaction_products``) the squared norms become learned
channel-mixing inner products, A^{(l)}_c · (A^{(l)} V^{(l)})_c with V^{(l)} a K x K matrix
(identity at the start), and two cubic invariants per channel join them, correlation
order 3 in the densities as in MACE's symmetric contractions:
A^{(1)}_c^T T_c A^{(1)}_c and tr(T_c^3), T_c the 3 x 3 traceless symmetric matrix whose
components are A^{(2)}_c (the l = 2 harmonics are those of r̂ r̂^T - I/3).

Equivariant features between layers (``model.interaction_vectors``, issue 13: what MACE's
medium model, 64x0e + 64x1o, adds over its invariant small one). A layer built with
``vectors_out`` also returns K polar vectors per atom,

    v_i <- v_i + ((A^{(1)}_i W_a + (T(A^{(2)}_i) A^{(1)}_i) W_b) ⊙ g(h_i, invariants))_c

(the l = 1 density and its product with the l = 2 one, l2 ⊗ l1 -> l1, channel-mixed by K x K
matrices and gated by a linear map g of the layer's invariants), and a layer built with
``vectors_in`` adds the neighbours' vectors ṽ_j = v_j W_v to its messages, through the
three couplings of an l = 1 feature with the pair direction that keep parity:

    s_i,c    = 1/n_avg sum_j R^{(s)}_c(r_ij) r̂_ij · ṽ_j,c                       (l1 ⊗ l1 -> l0)
    A^{(1)}_i,c += 1/n_avg sum_j R^{(v)}_c(r_ij) ṽ_j,c + R^{(t)}_c(r_ij) r̂_ij (r̂_ij · ṽ_j,c)
                                                               (l0 ⊗ l1, l2 ⊗ l1 -> l1)

and two invariants per channel to the update: s_i and v_i · A^{(1)}_i (i's own direction
against its neighbours'). So the second layer sees how j's environment is oriented
relative to the bond i-j, which invariant latents alone cannot carry. The first layer of
a stack only emits, the last only receives; one layer is unchanged by the option.

U a two-layer network whose last layer starts at zero, so an untrained layer leaves the
model as it was. Everything is a function of the pair vectors r_ij (vesin pairs,
rebuilt in torch), so forces, stress and Born charges flow through by autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fieldforce.neighbors import neighbor_pairs


class BatchPairs:
    """Neighbour pairs of every structure of a batch, as rows of the batch.

    Attributes
    ----------
    i, j
        [P] int64 batch rows of the centre and the neighbour (full list: both orders).
    vectors
        [P, 3] Å, r_j - r_i + S·cell, differentiable w.r.t. positions and cell.
    """

    def __init__(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                 structure_index: torch.Tensor, cutoff: float, box_of) -> None:
        rows_i, rows_j, shift_rows = [], [], []
        for b in range(cell.shape[0]):
            rows = torch.nonzero(structure_index == b)[:, 0]
            if len(rows) < 2:
                continue
            pos = positions[rows]
            # featomic's convention for mixed pbc (padded normal vectors, all periodic):
            # one treatment of slabs for the descriptor and the interaction layer
            box, periodic = box_of(cell[b], pbc[b].to(torch.bool), pos)
            i, j, shifts = neighbor_pairs(pos.detach().cpu().numpy(),
                                          box.detach().cpu().numpy(),
                                          periodic.cpu().numpy(), cutoff, full=True)
            rows_np = rows.cpu().numpy()
            rows_i.append(rows_np[i])
            rows_j.append(rows_np[j])
            shift_rows.append(torch.as_tensor(shifts, dtype=positions.dtype) @ box)
        device = positions.device
        if not rows_i:
            self.i = torch.zeros(0, dtype=torch.long, device=device)
            self.j = torch.zeros(0, dtype=torch.long, device=device)
            self.offsets = positions.new_zeros(0, 3)
            self.vectors = positions.new_zeros(0, 3)
            return
        self.i = torch.as_tensor(np.concatenate(rows_i), device=device)
        self.j = torch.as_tensor(np.concatenate(rows_j), device=device)
        self.offsets = torch.cat(shift_rows).to(device)
        self.vectors = positions[self.j] - positions[self.i] + self.offsets

    @classmethod
    def stacked(cls, parts: Sequence[BatchPairs], sizes: Sequence[int],
                positions: torch.Tensor) -> BatchPairs:
        """The pairs of structures stacked in the order of ``parts`` (``sizes`` atoms
        each, as collate does), their vectors from ``positions`` [N, 3]: pairs found once
        for fixed geometries (training) serve every step. The periodic offsets are
        constants (no cell gradient)."""
        new = cls.__new__(cls)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        new.i = torch.cat([p.i + s for p, s in zip(parts, starts, strict=True)])
        new.j = torch.cat([p.j + s for p, s in zip(parts, starts, strict=True)])
        new.offsets = torch.cat([p.offsets.detach() for p in parts]).to(positions)
        new.vectors = positions[new.j] - positions[new.i] + new.offsets
        return new


class Interaction(nn.Module):
    """One message-passing layer on the latent (module docstring).

    Parameters
    ----------
    width
        latent width H.
    cutoff
        interaction cutoff r_c, Å.
    n_basis
        number of Bessel radial functions.
    products
        channel-mixing inner products and cubic invariants of the densities (module
        docstring) instead of their squared norms.
    channels, max_angular, radial
        K channels for l >= 1 (None: H/4, at least 4), the highest l (2 or 3), the width
        of the radial networks (0: linear in the Bessel basis).
    vectors_in, vectors_out
        take the previous layer's K vectors per atom into the messages / return this
        layer's (module docstring).
    """

    def __init__(self, width: int, cutoff: float, n_basis: int = 8,
                 products: bool = False, channels: int | None = None,
                 max_angular: int = 2, radial: int = 0, vectors_in: bool = False,
                 vectors_out: bool = False) -> None:
        super().__init__()
        if max_angular not in (2, 3):
            raise ValueError(f"interaction max_angular must be 2 or 3, not {max_angular}")
        self.width = int(width)
        self.channels = int(channels) if channels else max(4, self.width // 4)
        self.cutoff = float(cutoff)
        self.products = bool(products)
        self.max_angular = int(max_angular)
        self.vectors_in, self.vectors_out = bool(vectors_in), bool(vectors_out)
        self.register_buffer("frequencies",
                             math.pi / self.cutoff * torch.arange(1, n_basis + 1,
                                                                  dtype=torch.float64))
        # radial functions: H for l = 0, K per l >= 1, and K each for s, ṽ and r̂ (r̂ · ṽ)
        sizes = width + (self.max_angular + 3 * self.vectors_in) * self.channels
        # no bias on the radial map's output: every radial function must vanish
        # (smoothly) at the cutoff, or the energy jumps when a neighbour crosses it; the
        # network's output is multiplied by the cutoff function for the same reason
        if radial:
            self.radial = nn.Sequential(nn.Linear(n_basis, int(radial)), nn.SiLU(),
                                        nn.Linear(int(radial), sizes, bias=False))
        else:
            self.radial = nn.Linear(n_basis, sizes, bias=False)
        self.radial_network = bool(radial)
        self.mix = nn.Linear(width, width + self.max_angular * self.channels, bias=False)
        n_invariants = (2 * width + (4 if self.products else 2) * self.channels
                        + (self.max_angular - 2) * self.channels
                        + 2 * self.vectors_in * self.channels)
        k = self.channels
        if self.vectors_in:
            self.vector_mix = nn.Parameter(torch.eye(k))
        if self.vectors_out:
            # scaled like a linear layer's weights: the vectors start as mixtures of the
            # densities, gated at one half (the gate's map starts at zero)
            self.vector_a = nn.Parameter(torch.eye(k) + torch.randn(k, k) / k)
            self.vector_b = nn.Parameter(torch.randn(k, k) / k)
            self.gate = nn.Linear(n_invariants, k)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        if self.products:
            self.pair1 = nn.Parameter(torch.eye(self.channels))
            self.pair2 = nn.Parameter(torch.eye(self.channels))
        self.update = nn.Sequential(nn.Linear(n_invariants, width), nn.SiLU(),
                                    nn.Linear(width, width))
        nn.init.zeros_(self.update[-1].weight)
        nn.init.zeros_(self.update[-1].bias)

    def basis(self, r: torch.Tensor) -> torch.Tensor:
        """[P, n_basis] Bessel functions sin(k pi r / r_c) / r times the cosine cutoff."""
        return torch.sin(self.frequencies * r[:, None]) / r[:, None] * self.smooth(r)[:, None]

    def smooth(self, r: torch.Tensor) -> torch.Tensor:
        """[P] the cosine cutoff function, 1 at r = 0, 0 (with zero slope) from r_c on."""
        return 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0) * (r < self.cutoff)

    def radial_functions(self, r: torch.Tensor) -> torch.Tensor:
        """[P, H + (max_angular + 3 vectors_in) K] R_c(r): zero from the cutoff on."""
        if not self.radial_network:
            return self.radial(self.basis(r))
        # a network of the basis does not vanish at r_c by itself (SiLU(0) biases)
        return self.radial(self.basis(r)) * self.smooth(r)[:, None]

    def forward(self, h: torch.Tensor, pairs: BatchPairs, n_avg: torch.Tensor,
                vectors: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Refined latent [N, H] from ``h`` [N, H] and the pairs (within the cutoff), and
        with ``vectors_out`` this layer's vectors [N, 3, K] (else None); ``vectors``: the
        previous layer's, read when ``vectors_in``."""
        n, width, k = h.shape[0], self.width, self.channels
        r = pairs.vectors.norm(dim=-1)
        unit = pairs.vectors / r[:, None]
        harmonics = real_harmonics(unit, self.max_angular)
        radial = self.radial_functions(r) / n_avg
        end = width + self.max_angular * k
        weights = radial[:, :end] * self.mix(h)[pairs.j]
        w0 = weights[:, :width]
        a0 = h.new_zeros(n, width).index_add(0, pairs.i, w0)
        messages = [y[:, :, None] * weights[:, None, width + (l - 1) * k:width + l * k]
                    for l, y in enumerate(harmonics[1:], start=1)]
        extra = []
        if self.vectors_in:
            if vectors is None:
                raise ValueError("this interaction layer reads the previous layer's vectors")
            neighbor = (vectors @ self.vector_mix)[pairs.j]  # [P, 3, K]
            along = (unit[:, :, None] * neighbor).sum(1)  # r̂ · ṽ_j, [P, K]
            r_s, r_v, r_t = radial[:, end:].split(k, dim=1)
            messages[0] = messages[0] + r_v[:, None] * neighbor \
                + unit[:, :, None] * (r_t * along)[:, None]
            extra.append(h.new_zeros(n, k).index_add(0, pairs.i, r_s * along))
        densities = [h.new_zeros(n, 2 * l + 1, k).index_add(0, pairs.i, m)
                     for l, m in enumerate(messages, start=1)]
        a1, a2 = densities[0], densities[1]
        if self.vectors_in:
            extra.append((vectors * a1).sum(1))
        higher = [a.pow(2).sum(1) for a in densities[2:]]
        # the l = 2 density as a matrix: for the cubic invariants and the l2 ⊗ l1 vectors
        t = traceless_matrix(a2) if self.products or self.vectors_out else None  # [N,3,3,K]
        if not self.products:
            invariants = torch.cat([h, a0, a1.pow(2).sum(1), a2.pow(2).sum(1), *higher,
                                    *extra], dim=-1)
        else:
            invariants = torch.cat([
                h, a0, (a1 * (a1 @ self.pair1)).sum(1), (a2 * (a2 @ self.pair2)).sum(1),
                torch.einsum("nak,nabk,nbk->nk", a1, t, a1),
                torch.einsum("nabk,nbck,ncak->nk", t, t, t), *higher, *extra], dim=-1)
        out = None
        if self.vectors_out:
            coupled = torch.einsum("nabk,nbk->nak", t, a1)
            out = (a1 @ self.vector_a + coupled @ self.vector_b) \
                * torch.sigmoid(self.gate(invariants))[:, None]
            if self.vectors_in:  # a middle layer of a stack: residual, as h
                out = out + vectors
        return h + self.update(invariants), out


def real_harmonics(unit: torch.Tensor, max_angular: int) -> list[torch.Tensor]:
    """Real spherical harmonics of unit vectors [P, 3], l = 0..max_angular (at most 3):
    a list of [P, 2l + 1] tensors, each l orthonormal up to one common factor (so that
    squared norms of their densities are rotation invariants).

    l = 1 is r̂ itself; l = 2 the components of r̂ r̂^T - I/3 that
    :func:`traceless_matrix` inverts; l = 3 the standard real harmonics divided by
    (1/4) sqrt(7/pi), the normalisation of z (5 z² - 3).
    """
    x, y, z = unit.unbind(-1)
    out = [torch.ones_like(x)[:, None], unit]
    root3 = math.sqrt(3.0)
    if max_angular >= 2:
        out.append(torch.stack([root3 * x * y, root3 * y * z, 1.5 * z * z - 0.5,
                                root3 * x * z, 0.5 * root3 * (x * x - y * y)], dim=-1))
    if max_angular >= 3:
        z5 = 5.0 * z * z - 1.0
        out.append(torch.stack([
            math.sqrt(2.5) * y * (3.0 * x * x - y * y), 2.0 * math.sqrt(15.0) * x * y * z,
            math.sqrt(1.5) * y * z5, z * (5.0 * z * z - 3.0), math.sqrt(1.5) * x * z5,
            math.sqrt(15.0) * z * (x * x - y * y), math.sqrt(2.5) * x * (x * x - 3.0 * y * y)],
            dim=-1))
    return out


def traceless_matrix(a2: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3, K] traceless symmetric matrices from the l = 2 components [N, 5, K].

    Inverts the harmonics of :meth:`Interaction.forward` (√3 xy, √3 yz, 3/2 (z² - 1/3),
    √3 xz, √3/2 (x² - y²)) of T = r̂ r̂^T - I/3, so a density of them maps to the same
    density of T, which rotates as a matrix.
    """
    root3 = math.sqrt(3.0)
    xy, yz, zz, xz = a2[:, 0] / root3, a2[:, 1] / root3, a2[:, 2] / 1.5, a2[:, 3] / root3
    xx_minus_yy = 2.0 * a2[:, 4] / root3
    xx, yy = 0.5 * (-zz + xx_minus_yy), 0.5 * (-zz - xx_minus_yy)
    rows = [torch.stack(r, dim=1) for r in ((xx, xy, xz), (xy, yy, yz), (xz, yz, zz))]
    return torch.stack(rows, dim=1)


__all__ = ["BatchPairs", "Interaction", "real_harmonics", "traceless_matrix"]
