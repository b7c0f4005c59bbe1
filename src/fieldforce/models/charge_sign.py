"""The global sign of learned charges, which neutral zero-field data cannot fix.

q -> -q (with whatever produced q negated) leaves the energy and forces of neutral
structures at zero field unchanged: the Coulomb energy is quadratic in the charges. A
family with charges (latent Ewald, QEq) calls :func:`settle_charge_sign` once training
ends, from its ``settle``: data that see the sign (dipole, Born-charge, charge or
polarization labels, frames in a field or with a net charge) leave the model alone;
otherwise a documented convention picks the sign and the model records which applied in
``config["charge_sign"]``. Change the convention here, nowhere else.
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
    ``model.config["charge_sign"]``; returns what was decided.
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
    species = sorted({int(z) for f in frames for z in f.atoms.numbers})
    chi = {z: pauling_electronegativity(z) for z in species}
    sums = dict.fromkeys(species, 0.0)
    counts = dict.fromkeys(species, 0)
    for start in range(0, len(frames), 64):
        batch = collate(frames[start:start + 64])
        charges = evaluate(model, batch, forces=False)["charges"]
        for z in species:
            mine = batch.numbers == z
            sums[z] += float(charges[mine].sum())
            counts[z] += int(mine.sum())
    tabulated = [z for z in species if chi[z] > 0]
    if not tabulated:
        model.config["charge_sign"] = "as trained (no element with a tabulated electronegativity)"
        return {"charge_sign": model.config["charge_sign"], "negated": False}
    mean_chi = sum(chi[z] * counts[z] for z in tabulated) / sum(counts[z] for z in tabulated)
    vote = sum(sums[z] * (chi[z] - mean_chi) for z in tabulated)
    flipped = vote > 0
    if flipped:
        negate()
    sign = -1.0 if flipped else 1.0
    anchor = max(tabulated, key=lambda z: chi[z])
    mean = sign * sums[anchor] / counts[anchor]
    model.config["charge_sign"] = (
        "convention: charges anticorrelated with electronegativity (mean charge of "
        f"{chemical_symbols[anchor]}, the most electronegative species, {mean:+.3g} e)"
        + (" (the trained charges were negated)" if flipped else ""))
    return {"charge_sign": model.config["charge_sign"], "negated": flipped,
            "mean_charge_of_anchor_e": mean}


__all__ = ["settle_charge_sign"]
