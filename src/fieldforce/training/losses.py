"""Loss terms: label spreads, the comparison of predictions with labels, the weighted sum.

Loss = sum_p w_p <(pred - ref)²>_p / s_p², over the properties p with a weight, labels
and a prediction; s_p is the standard deviation of the training labels of p (so the
weights are dimensionless; one labelled value has no spread and leaves its term
unnormalised). For the energy it is the spread left after a least-squares fit of the
energies to the composition (per-element energies): total energies per atom differ by
thousands of eV between elements, a spread no model has to learn (the families fit the
same composition baseline), and normalising by it would make the energy term vanish
against the others in any set with more than one stoichiometry. Labels marked
``per_atom_score`` in the label table (the energy) are compared per atom. A frame
without a label does not enter that term. A slab's (two periodic axes) dipole and
polarizability enter along its normal only
(:func:`~fieldforce.data.batch.physical_components`). The same comparison
(:func:`labelled_pairs`) gives the errors of ``fieldforce eval``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fieldforce.data.batch import Batch, collate, physical_components
from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS, LOSS_TERMS


def labelled_pairs(batch: Batch, out: dict[str, torch.Tensor], name: str
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(prediction, label) of ``name`` over the structures (or atoms) that have the label;
    None when the batch has no such label or the model made no such prediction."""
    if name not in batch.labels or name not in out:
        return None
    ref, pred = batch.labels[name], out[name]
    if LABELS[name].per_atom_score:
        n_atoms = batch.n_atoms_per_structure.to(batch.positions.dtype)
        ref, pred = ref / n_atoms, pred / n_atoms
    mask = batch.label_mask[name]
    if ref.shape[0] != batch.n_structures:  # per-atom label
        mask = mask[batch.structure_index]
        return pred[mask], ref[mask]
    # a slab's dipole and polarizability are compared along its normal only
    structures = torch.nonzero(mask).flatten()
    return (physical_components(batch, name, pred[mask], structures),
            physical_components(batch, name, ref[mask], structures))


def label_scales(frames: Sequence[Frame]) -> dict[str, float]:
    """Standard deviation of each loss term's labels over ``frames`` (per atom where scored
    so); a term with a single labelled value gets 1 (no spread to normalise by)."""
    batch = collate(frames)
    scales = {}
    for name in LOSS_TERMS:
        if name in batch.labels and batch.label_mask[name].any():
            values = batch.labels[name]
            mask = batch.label_mask[name]
            if LABELS[name].per_atom_score:
                values = values / batch.n_atoms_per_structure
            if values.shape[0] != batch.n_structures:
                values = values[mask[batch.structure_index]]
            else:
                values = physical_components(batch, name, values[mask],
                                             torch.nonzero(mask).flatten())
            if name == "energy":
                residual = _composition_residual(batch, mask)
                # too few structures to fit per-element energies and leave a spread (an
                # exact fit): the per-atom energies' own spread, as without the fit
                if residual.numel() > 1 and float(residual.std()) > 1e-6:
                    values = residual
            scales[name] = float(values.std().clamp_min(1e-6)) if values.numel() > 1 else 1.0
    return scales


def _composition_residual(batch: Batch, mask: torch.Tensor) -> torch.Tensor:
    """Per-atom energies of the labelled structures minus the models' own composition fit
    (:func:`~fieldforce.models.backbone.composition_baseline`, reproducible to the bit, so
    a resumed training normalises exactly as the uninterrupted one) [S] eV/atom."""
    from fieldforce.models.backbone import composition_baseline, composition_counts

    elements, column = torch.unique(batch.numbers, return_inverse=True)
    counts = composition_counts(column, batch.structure_index, batch.n_structures,
                                len(elements), torch.float64)[mask]
    energy = batch.labels["energy"].to(torch.float64)[mask]
    return (energy - counts @ composition_baseline(counts, energy)) / counts.sum(dim=1)


def weighted_loss(batch: Batch, out: dict[str, torch.Tensor], terms: Sequence[str],
                  weights: dict[str, float], scales: dict[str, float]
                  ) -> tuple[torch.Tensor | float, dict[str, float]]:
    """(the weighted loss, the RMSE of each term present in this batch)."""
    total, parts = 0.0, {}
    for name in terms:
        pair = labelled_pairs(batch, out, name)
        if pair is None or pair[1].numel() == 0:
            continue
        pred, ref = pair
        mse = ((pred - ref) ** 2).mean()
        parts[name] = float(mse.detach().sqrt())
        total = total + weights[name] * mse / scales[name] ** 2
    return total, parts


__all__ = ["label_scales", "labelled_pairs", "weighted_loss"]
