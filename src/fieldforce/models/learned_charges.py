"""What neutral zero-field energies and forces can and cannot say about learned charges.

**The sign.** q -> -q (with whatever produced q negated) leaves the energy and forces of
neutral structures at zero field unchanged: the Coulomb energy is quadratic in the
charges. A family with charges (latent Ewald, QEq) calls :func:`settle_charge_sign` once
training ends, from its ``settle``: data that see the sign (dipole, Born-charge, charge or
polarization labels, frames in a field or with a net charge) leave the model alone;
otherwise a documented convention picks the sign and the model records which applied in
``config["charge_sign"]``. Change the convention here, nowhere else.

**Whether they matter.** Where nothing but energies and forces fixes the charges, they
are only as determined as the forces they cause: :func:`long_range_force_share` measures
that share. When the long-range part carries a few per mille of the forces, the charges
(and the Born charges, mostly charge flux sum_j r_j dq_j/dr_i then) are whatever the
optimiser left: :func:`settle_charge_sign` measures the share whenever the convention
had to pick the sign, warns below 1 % and returns it (the trainer's metrics.json,
``settled``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fieldforce.data.frame import Frame


@torch.no_grad()
def settle_charge_sign(model, frames: Sequence[Frame], terms: Sequence[str],
                       negate: Callable[[], None]) -> dict | None:
    """Fix the global sign of a model's charges where the data do not (for
    :meth:`FieldModel.settle` of families with charges).

    q -> -q (with whatever produced q negated) leaves the energy and forces of neutral
    structures at zero field unchanged, so such data cannot choose it. Dipole,
    Born-charge, charge or polarization terms, frames in a field or with a net charge do.
    Otherwise the convention: charges anticorrelate with Pauling electronegativity,
    sum_i q_i (chi_i - <chi>) < 0 over the training atoms (<chi> their mean; elements with
    no tabulated chi are left out). Every atom votes, weighted by how far its element
    sits from the average, so a species seen in one frame cannot decide it alone (for
    water it is "oxygen negative"). ``negate()`` (which must flip every charge and leave
    energies and forces unchanged) is called when it does not hold. Recorded as
    ``model.config["charge_sign"]``; returns what was decided, after the convention also
    :func:`undetermined_charges_warning`'s force share.
    """
    from ase.data import chemical_symbols

    from fieldforce.data.batch import collate
    from fieldforce.data.elements import pauling_electronegativity
    from fieldforce.models.derivatives import evaluate

    if not frames:
        return None
    reasons = [f"the {t} labels" for t in terms
               if t in ("dipole", "born_charges", "charges", "polarization", "polarizability")]
    if any(np.abs(f.efield).max() > 0 for f in frames):
        reasons.append("frames in a field")
    if any(float(f.labels.get("total_charge", 0.0)) != 0 for f in frames):
        reasons.append("frames with a net charge")
    if reasons:
        model.config["charge_sign"] = "data: " + ", ".join(reasons)
        return {"charge_sign": model.config["charge_sign"]}
    charges, numbers = [], []
    for start in range(0, len(frames), 64):
        batch = collate(frames[start:start + 64])
        charges.append(evaluate(model, batch, forces=False)["charges"].detach().cpu().numpy())
        numbers.append(batch.numbers.cpu().numpy())
    charges, numbers = np.concatenate(charges), np.concatenate(numbers)
    vote = electronegativity_vote(charges, numbers)
    if vote is None:
        model.config["charge_sign"] = "as trained (no element with a tabulated electronegativity)"
        return {"charge_sign": model.config["charge_sign"], "negated": False}
    flipped = vote > 0
    if flipped:
        negate()
    sign = -1.0 if flipped else 1.0
    anchor = max({int(z) for z in numbers}, key=pauling_electronegativity)
    mean = sign * float(charges[numbers == anchor].mean())
    model.config["charge_sign"] = (
        "convention: charges anticorrelated with electronegativity (mean charge of "
        f"{chemical_symbols[anchor]}, the most electronegative species, {mean:+.3g} e)"
        + (" (the trained charges were negated)" if flipped else ""))
    # nothing but the forces the charges cause fixed them: say how much that is
    return {"charge_sign": model.config["charge_sign"], "negated": flipped,
            "mean_charge_of_anchor_e": mean, **undetermined_charges_warning(model, frames)}


def electronegativity_vote(charges: np.ndarray, numbers: np.ndarray) -> float | None:
    """sum_i q_i (chi_i - <chi>) over the atoms whose element has a tabulated Pauling
    electronegativity chi (<chi> their mean): negative when the charges ``charges`` [N] e
    anticorrelate with electronegativity, the sign convention of
    :func:`settle_charge_sign`. None when no element has a tabulated chi."""
    from fieldforce.data.elements import pauling_electronegativity

    elements, which = np.unique(np.asarray(numbers, dtype=int), return_inverse=True)
    chi = np.array([pauling_electronegativity(int(z)) for z in elements])[which]
    known = chi > 0
    if not known.any():
        return None
    return float((np.asarray(charges)[known] * (chi[known] - chi[known].mean())).sum())


def long_range_force_share(model, frames: Sequence[Frame], batch_size: int = 32
                           ) -> dict | None:
    """How much of the forces a model's charges carry on ``frames``.

    The long-range force is the total force minus the gradient of the family's
    ``energy_short_range`` (its Coulomb or charge-equilibration part, with the field's
    where there is one); returned with its RMS (eV/Å) over all force components, the RMS
    of the force labels (of the model's own forces for frames without) and their ratio
    ``long_range_force_share``. None for a model without charges or without
    ``energy_short_range``.
    """
    from fieldforce.data.batch import collate
    from fieldforce.models.derivatives import atom_fields

    if not frames or not getattr(model, "has_charges", False):
        return None
    squares = {"long": 0.0, "reference": 0.0}
    count = 0
    for start in range(0, len(frames), batch_size):
        part = list(frames[start:start + batch_size])
        batch = collate(part)
        positions = batch.positions.detach().requires_grad_(True)
        moved = batch.with_positions(positions, batch.cell)
        with torch.enable_grad():
            out = model(moved, atom_fields(moved, positions))
            if "energy_short_range" not in out:
                return None
            total, short = (torch.autograd.grad(out[k].sum(), positions, retain_graph=True,
                                                allow_unused=True)[0]
                            for k in ("energy", "energy_short_range"))
        zero = torch.zeros_like(positions)
        total = zero if total is None else total
        short = zero if short is None else short
        long = (short - total).detach()  # F_total - F_short, with F = -dE/dr
        offset = 0
        for frame in part:
            n = len(frame.atoms)
            labels = frame.labels.get("forces")
            reference = (torch.as_tensor(np.asarray(labels), dtype=long.dtype)
                         if labels is not None else -total[offset:offset + n].detach())
            squares["reference"] += float((reference ** 2).sum())
            offset += n
        squares["long"] += float((long ** 2).sum())
        count += long.numel()
    long_rms = (squares["long"] / count) ** 0.5
    reference_rms = (squares["reference"] / count) ** 0.5
    return {"long_range_force_rms": long_rms, "force_rms": reference_rms,
            "long_range_force_share": long_rms / reference_rms if reference_rms else 0.0}


def undetermined_charges_warning(model, frames: Sequence[Frame], sample: int = 256,
                                 threshold: float = 0.01) -> dict:
    """:func:`long_range_force_share` on at most ``sample`` of ``frames``, and a warning
    when it is below ``threshold``: for a model whose charge sign the convention had to
    fix (nothing in its data but energies and forces saw the charges). On the water
    clusters' zero-field frames such models carry 0.006-0.3 % of the forces and their Born
    charges are no better than zero (BENCHMARKS, issue 17)."""
    import warnings

    step = max(1, len(frames) // sample)
    share = long_range_force_share(model, frames[::step])
    if share is not None and share["long_range_force_share"] < threshold:
        warnings.warn(
            f"the charges carry {100 * share['long_range_force_share']:.2g} % of the training "
            "forces and no dipole, Born-charge, charge or field data fix them: this model's "
            "charges, dipoles and Born charges are not determined by its data (metrics.json: "
            "settled.long_range_force_share)", stacklevel=3)
    return share or {}


__all__ = ["electronegativity_vote", "long_range_force_share", "settle_charge_sign",
           "undetermined_charges_warning"]
