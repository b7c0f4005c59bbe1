"""Frames -> one batch of tensors, the input every model takes (DESIGN.md, "The batch").

Shapes: N atoms in all, B structures. Periodic and non-periodic structures share
one layout (a zero cell and pbc False for molecules). Labels keep their canonical
shapes, stacked; a structure missing a label has zeros there and ``False`` in
``label_mask[name]`` (per structure, [B]), so it simply does not contribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS, TARGETS


@dataclass
class Batch:
    """Tensors of B structures with N atoms in all.

    positions [N, 3] Å, numbers [N], cell [B, 3, 3] Å, pbc [B, 3], structure_index [N]
    (structure of each atom), field [B, 3] V/Å (the frames' uniform fields),
    total_charge [B] e, labels {name: [B, ...] or [N, ...]}, label_mask {name: [B]}.
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    structure_index: torch.Tensor
    field: torch.Tensor
    total_charge: torch.Tensor
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    label_mask: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms_per_structure(self) -> torch.Tensor:
        return torch.bincount(self.structure_index, minlength=self.n_structures)

    def atom_mask(self, name: str) -> torch.Tensor:
        """[N] bool: atoms whose structure has label ``name``."""
        return self.label_mask[name][self.structure_index]

    def open_directions(self, structure: int) -> torch.Tensor:
        """[3, k] orthonormal directions of structure ``structure`` along which its dipole
        is an observable: all three for a molecule (and, by the data's own convention,
        for a fully periodic cell), the normal of a slab (2 periodic axes), the plane
        orthogonal to a wire's axis (1 periodic axis). See :func:`physical_components`."""
        return open_directions(self.cell[structure], self.pbc[structure])

    def with_positions(self, positions: torch.Tensor, cell: torch.Tensor | None = None) -> Batch:
        return replace(self, positions=positions, cell=self.cell if cell is None else cell)

    def sum_per_structure(self, per_atom: torch.Tensor) -> torch.Tensor:
        """[N, ...] -> [B, ...] by summing the atoms of each structure."""
        out = torch.zeros((self.n_structures, *per_atom.shape[1:]), dtype=per_atom.dtype,
                          device=per_atom.device)
        return out.index_add(0, self.structure_index, per_atom)


def open_directions(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """[3, k] orthonormal basis of the directions without periodicity (k = 3 - periodic
    axes; all three when every axis is periodic). ``cell`` [3, 3] Å, ``pbc`` [3] bool."""
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    periodic = [int(k) for k in torch.nonzero(pbc).flatten()]
    if len(periodic) in (0, 3):
        return eye
    if len(periodic) == 2:
        normal = torch.linalg.cross(cell[periodic[0]], cell[periodic[1]])
        return (normal / normal.norm()).reshape(3, 1)
    axis = cell[periodic[0]] / cell[periodic[0]].norm()
    # the two left singular vectors orthogonal to the wire's axis
    u, _, _ = torch.linalg.svd(eye - torch.outer(axis, axis))
    return u[:, :2]


def physical_components(batch: Batch, name: str, values: torch.Tensor,
                        structures: torch.Tensor) -> torch.Tensor:
    """The components of a dipole [S, 3] or polarizability [S, 3, 3] of ``structures`` [S]
    that are observables, flattened: a slab's dipole along its normal and its
    polarizability normal-normal (a periodic electron density has no in-plane dipole),
    everything for molecules and fully periodic cells. Any other label: ``values``
    unchanged. Labels and predictions go through the same projection, so losses and
    errors compare exactly what DFT with vacuum along the open axes defines."""
    if name not in ("dipole", "polarizability"):
        return values
    pbc = batch.pbc[structures]
    partial = (pbc.sum(-1) > 0) & (pbc.sum(-1) < 3)
    if not bool(partial.any()):
        return values
    parts = []
    for row, s in enumerate(structures.tolist()):
        u = batch.open_directions(s).to(values.dtype)
        v = values[row]
        parts.append((u.T @ v).flatten() if name == "dipole" else (u.T @ v @ u).flatten())
    return torch.cat(parts)


def collate(frames: Sequence[Frame], dtype: torch.dtype = torch.float64,
            device: torch.device | str = "cpu") -> Batch:
    """Stack ``frames`` into one :class:`Batch` (labels in internal units, as read)."""
    if len(frames) == 0:
        raise ValueError("cannot make a batch of zero frames")
    counts = [len(f.atoms) for f in frames]

    def t(x, dt=dtype):
        return torch.as_tensor(np.asarray(x), dtype=dt, device=device)

    labels, masks = {}, {}
    for name in TARGETS:
        present = [f.has(name) for f in frames]
        if not any(present):
            continue
        per_atom = LABELS[name].per_atom
        shape = LABELS[name].shape
        parts = []
        for f, n, has in zip(frames, counts, present, strict=True):
            if has:
                parts.append(np.asarray(f.labels[name], dtype=float))
            else:
                parts.append(np.zeros(((n,) if per_atom else ()) + shape))
        stacked = np.concatenate(parts) if per_atom else np.stack(parts)
        labels[name] = t(stacked)
        masks[name] = torch.as_tensor(present, device=device)
    return Batch(
        positions=t(np.concatenate([f.atoms.positions for f in frames])),
        numbers=t(np.concatenate([f.atoms.numbers for f in frames]), torch.long),
        cell=t(np.stack([f.atoms.cell.array for f in frames])),
        pbc=t(np.stack([f.atoms.pbc for f in frames]), torch.bool),
        structure_index=t(np.repeat(np.arange(len(frames)), counts), torch.long),
        field=t(np.stack([f.efield for f in frames])),
        total_charge=t([f.total_charge for f in frames]),
        labels=labels,
        label_mask=masks,
    )


def batch_from_atoms(atoms, dtype: torch.dtype = torch.float64, device="cpu") -> Batch:
    """A one-structure batch from an ASE ``Atoms`` (no labels, zero field)."""
    return collate([Frame(atoms)], dtype=dtype, device=device)
