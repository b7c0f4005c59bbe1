"""The one autograd helper: forces, stress and field terms from a model's energy.

Every model family returns the energy U(R, E) per structure; this module makes
the positions (and a strain, for stress) differentiable, evaluates the external
field at the atoms inside the graph, and differentiates once:

    F_i = -dU/dr_i          (includes (dmu/dr).E, 1/2 E.(dalpha/dr).E and, for a
                             non-uniform field E(r), (mu_i + alpha_i E_i).dE/dr_i)
    sigma = (1/V) dU/d(strain)   (periodic structures; ASE's sign convention)

Two generic extensions, for families that need them:

* Born charges: for a model that predicts ``charges`` [N] (differentiable in the
  positions), ``born_charges=True`` adds Z*_{i,ab} = V dP_a/dr_ib [N, 3, 3] e,
  with the acoustic sum rule, from
  :func:`fieldforce.electrostatics.polarization.batch_born_charges`.
* Forces that are not gradients of the model's energy: a model may define
  ``extra_forces(batch, positions, atom_field, out, create_graph=False)`` returning
  [N, 3] eV/Å (or None for none); they are added to ``forces`` (only when forces are
  requested; never to the stress). The latent-charge model uses it for the force
  Z*^T E of a uniform field in a periodic cell, where the polarization is
  multivalued and -E.VP is no energy whose gradient is that force.
* The external potential: a model whose ``needs_potential`` is true (charge
  equilibration: chi_i -> chi_i + phi_ext(r_i)) also gets ``atom_potential`` [N] V,
  differentiable through the positions like the field: phi = -E.r for uniform fields
  (zero at the origin), the field object's own ``potential`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fieldforce.data.batch import Batch
from fieldforce.electrostatics.polarization import batch_born_charges
from fieldforce.errors import ConfigError

#: a field: None (the batch's own uniform fields), a [3] or [B, 3] tensor of uniform
#: fields in V/Å, or a function (positions [N, 3] Å, time fs) -> [N, 3] V/Å.
FieldLike = torch.Tensor | Callable | None


def atom_fields(batch: Batch, positions: torch.Tensor, field: FieldLike = None,
                time_fs: float = 0.0) -> torch.Tensor:
    """The field at every atom, [N, 3] V/Å, differentiable through ``positions``."""
    if field is None:
        return batch.field[batch.structure_index]
    if callable(field) and not isinstance(field, torch.Tensor):
        values = field(positions, time_fs)
        return torch.as_tensor(values).to(positions)
    field = torch.as_tensor(field).to(positions)
    if field.ndim == 1 and field.shape[0] == 3:
        return field.expand(positions.shape[0], 3)
    if field.ndim != 2 or field.shape != (batch.n_structures, 3):
        # e.g. a per-atom [N, 3] array would otherwise be read row by row as the
        # structures' fields
        raise ConfigError(f"a field tensor must be [3] (one uniform field) or [B, 3] (one "
                          f"per structure, B = {batch.n_structures}); got shape "
                          f"{tuple(field.shape)}. A field that varies from atom to atom is "
                          "a function of the positions (fieldforce.fields)")
    return field[batch.structure_index]


def atom_potentials(batch: Batch, positions: torch.Tensor, field: FieldLike = None,
                    time_fs: float = 0.0) -> torch.Tensor:
    """The external potential at every atom, [N] V, differentiable through ``positions``."""
    if field is None or isinstance(field, torch.Tensor):
        uniform = atom_fields(batch, positions, field, time_fs)
        return -(uniform * positions).sum(-1)
    potential = getattr(field, "potential", None)
    if potential is None or not getattr(field, "has_potential", True):
        raise ConfigError(f"this model couples to the external potential, but the field "
                          f"{field!r} has none; use a field with a potential (uniform, "
                          "point charge, grid) or an AnalyticField with potential=...")
    return torch.as_tensor(potential(positions, time_fs)).to(positions)


def rows_gradient(outputs: torch.Tensor, inputs: torch.Tensor, chunk: int = 64
                  ) -> torch.Tensor:
    """d(outputs[r])/d(inputs) for every entry r of a 1-d ``outputs``, [R, *inputs.shape]:
    one backward pass per entry, batched by vmap in chunks where every operation of the
    graph has a batching rule (featomic's own backward has none: then one at a time).
    The graph is kept (``retain_graph``)."""
    count = outputs.shape[0]
    eye = torch.eye(count, dtype=outputs.dtype, device=outputs.device)
    parts = []
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        try:
            grads = torch.autograd.grad(outputs, inputs, grad_outputs=eye[start:stop],
                                        retain_graph=True, is_grads_batched=True)[0]
        except RuntimeError:  # an operation without a batching rule
            grads = torch.stack([torch.autograd.grad(outputs[r], inputs, retain_graph=True)[0]
                                 for r in range(start, stop)])
        parts.append(grads)
    if not parts:
        return torch.zeros(0, *inputs.shape, dtype=inputs.dtype, device=inputs.device)
    return torch.cat(parts)


def evaluate(
    model: torch.nn.Module,
    batch: Batch,
    field: FieldLike = None,
    time_fs: float = 0.0,
    forces: bool = True,
    stress: bool = False,
    born_charges: bool = False,
    create_graph: bool = False,
    requests: frozenset[str] | set[str] | None = None,
    **model_kwargs,
) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``batch`` and add ``forces`` [N, 3] eV/Å and ``stress`` [B, 3, 3] eV/Å³.

    ``born_charges`` adds ``born_charges`` [N, 3, 3] e (models with ``charges`` only;
    acoustic sum rule on: sum_i Z*_i = Q I per structure, Q its net charge).
    ``create_graph`` keeps the derivatives differentiable (training on forces or
    Born charges). The model is called as ``model(batch, atom_field, **model_kwargs)``
    and must return at least ``energy`` [B] in eV. ``requests``: names of the family's own
    ``on_request`` outputs to compute (e.g. ``forces_uncertainty``), passed to the model
    as ``requests=`` (only when given, so families without such outputs need not accept
    it); the positions then require grad.
    """
    if requests:
        model_kwargs["requests"] = frozenset(requests)
    positions = batch.positions.detach().requires_grad_(forces or stress or born_charges
                                                        or bool(requests))
    cell = batch.cell
    strain = None
    if stress:
        strain = torch.zeros_like(batch.cell, requires_grad=True)
        deform = torch.eye(3, dtype=cell.dtype, device=cell.device) + strain
        positions_used = torch.einsum("ni,nij->nj", positions, deform[batch.structure_index])
        cell = cell @ deform
    else:
        positions_used = positions
    moved = batch.with_positions(positions_used, cell)
    e_atoms = atom_fields(moved, positions_used, field, time_fs)
    if getattr(model, "needs_potential", False):
        model_kwargs["atom_potential"] = atom_potentials(moved, positions_used, field, time_fs)
    out = model(moved, e_atoms, **model_kwargs)
    out["atom_field"] = e_atoms
    if born_charges:
        if "charges" not in out:
            raise ValueError(f"Born charges need a model that predicts charges; the "
                             f"{getattr(model, 'family', type(model).__name__)!r} model "
                             "does not")
        out["born_charges"] = batch_born_charges(
            positions, out["charges"], moved.cell, moved.pbc, moved.structure_index,
            total_charge=moved.total_charge, acoustic_sum_rule=True, create_graph=create_graph)
    if not (forces or stress):
        return out
    # before the energy's backward pass, which frees the graph these may need
    extra_forces = getattr(model, "extra_forces", None) if forces else None
    extra = None if extra_forces is None else extra_forces(moved, positions, e_atoms, out,
                                                            create_graph=create_graph)
    inputs = [positions] + ([strain] if stress else [])
    grads = torch.autograd.grad(out["energy"].sum(), inputs, create_graph=create_graph,
                                allow_unused=True)
    if forces:
        out["forces"] = -grads[0] if grads[0] is not None else torch.zeros_like(positions)
        if extra is not None:
            out["forces"] = out["forces"] + extra
    if stress:
        volume = torch.linalg.det(batch.cell).abs().clamp_min(1e-12)
        virial = grads[1] if grads[1] is not None else torch.zeros_like(batch.cell)
        out["stress"] = virial / volume[:, None, None]
    return out
