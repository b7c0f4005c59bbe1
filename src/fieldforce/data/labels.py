"""Canonical labels: names, shapes, where they live and their dimension.

Every structure that fieldforce handles carries its reference labels under
these names, in these shapes and in internal units (see :mod:`fieldforce.units`).
Readers map foreign keys onto them and convert; nothing past the reader sees
anything else.

===============  ==========  ===========  =================  =====================
name             per         shape        internal unit      meaning
===============  ==========  ===========  =================  =====================
energy           structure   ()           eV                 total energy U(R, E)
forces           atom        (N, 3)       eV/Å               -dU/dr_i
stress           structure   (3, 3)       eV/Å³              (1/V) dU/dstrain
dipole           structure   (3,)         e·Å                sum_i q_i r_i + electrons
polarizability   structure   (3, 3)       e·Å²/V             d mu_a / d E_b
charges          atom        (N,)         e                  partial charges
born_charges     atom        (N, 3, 3)    e                  Z*_{i,ab} = dF_{i,b}/dE_a
polarization     structure   (3,)         e/Å²               cell dipole / volume
efield           structure   (3,)         V/Å                applied uniform field
total_charge     structure   ()           e                  net charge
===============  ==========  ===========  =================  =====================

Born charges follow the convention Z*_{i,ab} = dP_a/dr_{i,b} · V = dF_{i,b}/dE_a
(first index: field / polarization direction, second: displacement / force).

This table is the one source of every property list and unit table in the package:
batches carry :data:`TARGETS`, training weighs :data:`LOSS_TERMS`, model outputs are
declared from it (:func:`fieldforce.models.contract.output`), errors are reported in
``score_unit`` and DFT backends declare which of its labels they compute.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldforce.units import INTERNAL_UNITS


@dataclass(frozen=True)
class LabelSpec:
    """Static description of one canonical label.

    ``role``: ``"target"`` for a property of the structure that models predict and DFT
    labels (losses, errors, calculator results and trajectories are built from these),
    ``"condition"`` for the state it was computed in (the applied field, the net charge).
    ``trainable``: a loss term exists for it (stress: not yet). ``per_atom_score``: losses
    and errors compare it per atom (the extensive energy). ``reference``: a DFT backend
    may be asked for it (not stress, which no backend computes yet; not charges, which
    are a partitioning rather than an observable; not the periodic Berry-phase
    polarization, not implemented).
    """

    name: str
    per_atom: bool
    shape: tuple[int, ...]  # shape per structure (per_atom=False) or per atom
    dimension: str  # a dimension of fieldforce.units
    description: str
    role: str = "target"
    trainable: bool = True
    per_atom_score: bool = False
    reference: bool = True

    @property
    def size(self) -> int:
        """Number of floats per structure or per atom."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def unit(self) -> str:
        """The internal unit (``fieldforce.units.INTERNAL_UNITS``)."""
        return INTERNAL_UNITS[self.dimension]

    @property
    def score_unit(self) -> str:
        """The unit of its errors: per atom for ``per_atom_score`` labels (eV/atom)."""
        return f"{self.unit}/atom" if self.per_atom_score else self.unit


LABELS: dict[str, LabelSpec] = {
    spec.name: spec
    for spec in (
        LabelSpec("energy", False, (), "energy", "total energy", per_atom_score=True),
        LabelSpec("forces", True, (3,), "force", "atomic forces"),
        LabelSpec("stress", False, (3, 3), "stress", "stress tensor", trainable=False,
                  reference=False),
        LabelSpec("dipole", False, (3,), "dipole", "dipole moment"),
        LabelSpec("polarizability", False, (3, 3), "polarizability", "dipole polarizability"),
        LabelSpec("charges", True, (), "charge", "atomic partial charges (a population "
                  "analysis; the backend states which)"),
        LabelSpec("born_charges", True, (3, 3), "charge", "Born effective charges"),
        LabelSpec("polarization", False, (3,), "polarization", "polarization (periodic)",
                  reference=False),
        LabelSpec("efield", False, (3,), "field", "applied uniform electric field",
                  role="condition"),
        LabelSpec("total_charge", False, (), "charge", "net charge of the structure",
                  role="condition"),
    )
}

#: labels a model predicts and DFT provides, in table order (batches carry these).
TARGETS: tuple[str, ...] = tuple(n for n, s in LABELS.items() if s.role == "target")
#: targets with a loss term (training.loss_weights keys).
LOSS_TERMS: tuple[str, ...] = tuple(n for n in TARGETS if LABELS[n].trainable)
#: targets a DFT backend may be asked for (each backend declares its own subset).
REFERENCE_LABELS: tuple[str, ...] = tuple(n for n in TARGETS if LABELS[n].reference)

#: Tensor labels that must be symmetric (checked on reading).
SYMMETRIC_LABELS = ("polarizability", "stress")
