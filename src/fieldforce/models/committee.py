"""A committee of trained models: their mean as the prediction, their spread as its error bar.

``model: {family: committee, members: [...]}``, assembled from K >= 2 trained models of
one family and head (``fieldforce committee A.pt B.pt ... -o committee.pt``, or
:meth:`CommitteeModel.from_models`), typically one training file run with different
seeds. What it predicts:

* every output of the members as the mean over members: U = (1/K) sum_k U_k, so the
  forces, stress and field terms, all derivatives of U through the one autograd helper,
  are the members' means too (non-gradient forces, ``extra_forces``, averaged as well);
* on request, the members' standard deviation (K - 1 in the denominator) of the energy
  [B] eV, the forces [N, 3] eV/Å (one more backward pass, for all members at once: each
  runs on its own copy of the positions, and of the field and potential at the atoms,
  whose position dependence is added by the chain rule), and the dipole [B, 3] and
  polarizability [B, 3, 3] where the family has them, as
  ``<name>_uncertainty``, each times a factor calibrated on held-out frames
  (:mod:`fieldforce.models.uncertainty`).

Why: averaging members whose errors are partly independent lowers the error (on the
water clusters three seeds of one setting, 0.0094 eV/Å each, give 0.0085 together:
BENCHMARKS.md, "Committees"), and their disagreement is the usual signal of an
environment the data did not cover (active learning, MD monitoring). It costs K model
evaluations per step, less featomic's density, computed once for all members when their
descriptors are the same (three members: 2.0-2.6x one model). Born charges of a
committee of charge models come from its mean charges (exact where the dipole is linear
in the charges, isolated structures; to second order in the members' spread in periodic
cells); the forces' spread leaves out the non-gradient forces.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fieldforce.config import option
from fieldforce.data.batch import Batch
from fieldforce.data.frame import Frame
from fieldforce.errors import ConfigError
from fieldforce.models.backbone import FixedGeometry
from fieldforce.models.contract import (
    FieldModel,
    ModelSettings,
    family_class,
    file_config,
    output,
)
from fieldforce.models.uncertainty import UNCERTAIN, CalibratedUncertainties


def _two_or_more(members: list) -> bool:
    return len(members) >= 2 and all(isinstance(m, dict) for m in members)


@dataclass(kw_only=True)
class CommitteeSettings(ModelSettings):
    """The ``model:`` section of a committee: its members' own sections."""

    family: str = option("committee", "model family")
    members: list[dict] = option(doc="the members' model sections (as their model files "
                                 "store them), two or more, of one family and head",
                                 check=_two_or_more,
                                 expected="a list of two or more model sections")

    def check(self) -> None:
        source, prefix = self.where()
        kinds = {(m.get("family", "response"), m.get("head") or "neural")
                 for m in self.members}
        if len(kinds) > 1 or ("committee", "neural") in kinds:
            got = ", ".join(f"{f}/{h}" for f, h in sorted(kinds))
            raise ConfigError(f"{source}: key '{prefix}.members': expected trained models of "
                              f"one family and head, got {got}")


class CommitteeModel(CalibratedUncertainties, FieldModel):
    """The mean and spread of K trained models of one family (see the module docstring).

    It declares the members' outputs and the ``<name>_uncertainty`` of those of
    :data:`~fieldforce.models.uncertainty.UNCERTAIN` they have; field support, coupling
    to the potential and charges are the members'.
    """

    family = "committee"
    settings_class = CommitteeSettings
    fitting = "closed_form"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        first = self.settings.members[0]
        cls = family_class(first.get("family", "response"), head=first.get("head"))
        self.members = nn.ModuleList(cls(file_config(cls, m)) for m in self.settings.members)
        self.config["members"] = [m.config for m in self.members]
        lead = self.members[0]
        # instance values shadow the class declarations: the committee is what its members are
        self.field_support = lead.field_support
        self.needs_potential = lead.needs_potential
        self.default_loss_weights = dict(lead.default_loss_weights)
        names = {o.name for o in lead.output_specs()}
        self.spread_of = tuple(n for n in UNCERTAIN if n in names)
        self.outputs = tuple(o for o in lead.outputs if not o.name.endswith("_uncertainty")
                             or o.name[:-len("_uncertainty")] not in self.spread_of) + tuple(
            output(f"{n}_uncertainty", like=n, on_request=True,
                   description=f"standard deviation of the committee members' {n} (times "
                               "the calibrated factor)") for n in self.spread_of)
        self.register_buffer("uncertainty_scales", torch.ones(len(UNCERTAIN)))
        # one featomic density for all when the members' descriptors are the same and their
        # forward takes a cached geometry (the backbone families): featomic is a third of
        # a response model's step on 192 atoms of periodic water
        descriptors = [getattr(getattr(m, "backbone", None), "features", None)
                       for m in self.members]
        self.shares_density = (
            all(d is not None for d in descriptors)
            and all(m.config.get("descriptor") == lead.config.get("descriptor")
                    for m in self.members)
            and "geometry" in inspect.signature(lead.forward).parameters)
        self._member_outputs: list[dict[str, torch.Tensor]] = []
        self.double()

    @classmethod
    def from_models(cls, models: Sequence[FieldModel]) -> CommitteeModel:
        """The committee of trained ``models`` (their weights copied), in eval mode; its
        training domain the narrowest of theirs."""
        models = list(models)
        if len(models) < 2:
            raise ConfigError(f"a committee needs two or more models, got {len(models)}")
        species = {tuple(m.species or ()) for m in models}
        if len(species) > 1:
            raise ConfigError("a committee's members must know the same elements; got "
                              + "; ".join(str(list(s)) for s in sorted(species)))
        committee = cls({"family": cls.family, "members": [m.config for m in models]})
        for member, model in zip(committee.members, models, strict=True):
            member.load_state_dict(model.state_dict())
        committee.domain_max_field.fill_(min(float(m.domain_max_field) for m in models))
        return committee.eval()

    # -- declarations ------------------------------------------------------------------------

    @property
    def has_charges(self) -> bool:
        return self.members[0].has_charges

    @property
    def species(self) -> list[int] | None:
        return self.members[0].species

    # -- prediction --------------------------------------------------------------------------

    def forward(self, batch: Batch, atom_field: torch.Tensor,
                requests: frozenset[str] = frozenset(), **options: Any
                ) -> dict[str, torch.Tensor]:
        """The members' mean of every output, and the requested spreads (see the module
        docstring); ``options`` go to every member (e.g. ``atom_potential``)."""
        spreads = {n for n in self.spread_of if f"{n}_uncertainty" in requests}
        theirs = frozenset(requests) - {f"{n}_uncertainty" for n in spreads}
        if theirs:
            options["requests"] = theirs
        if self.shares_density and "geometry" not in options:
            options["geometry"] = self._shared_geometry(batch)
        # each member on its own copy of the positions (and of the field and potential at
        # the atoms, functions of the positions) when their forces' spread is asked for:
        # one backward pass then gives every member's forces at once
        own = "forces" in spreads and batch.positions.requires_grad
        inputs = [self._own_inputs(batch, atom_field, options) if own else
                  (batch, atom_field, options) for _ in self.members]
        outs = [member(b, field, **kwargs)
                for member, (b, field, kwargs) in zip(self.members, inputs, strict=True)]
        self._member_outputs = outs  # for extra_forces, called next by the autograd helper
        out = {}
        for key, value in outs[0].items():
            values = [o.get(key) for o in outs]
            if torch.is_tensor(value) and value.is_floating_point() and all(
                    torch.is_tensor(v) and v.shape == value.shape for v in values):
                out[key] = torch.stack(values).mean(0)
            else:  # e.g. an integer per-atom index: the same for every member
                out[key] = value
        for name in spreads - {"forces"}:
            if not all(name in o for o in outs):
                continue  # not computed on this call (e.g. a dipole at zero field)
            values = torch.stack([o[name].detach() for o in outs])
            out[f"{name}_uncertainty"] = self.uncertainty_scale(name) * values.std(0)
        if "forces" in spreads:
            if own:
                forces = self._member_forces(batch, atom_field, options, inputs, outs)
                out["forces_uncertainty"] = self.uncertainty_scale("forces") * forces.std(0)
            else:
                out["forces_uncertainty"] = torch.zeros_like(batch.positions)
        return out

    @staticmethod
    def _own_inputs(batch: Batch, atom_field: torch.Tensor, options: dict) -> tuple:
        """A member's own copies of the positions, the field and the potential at the
        atoms: distinct nodes of the graph, whose gradients are that member's alone."""
        kwargs = dict(options)
        if "atom_potential" in kwargs:
            kwargs["atom_potential"] = kwargs["atom_potential"].clone()
        return batch.with_positions(batch.positions.clone()), atom_field.clone(), kwargs

    @staticmethod
    def _member_forces(batch: Batch, atom_field: torch.Tensor, options: dict,
                       inputs: list[tuple], outs: list[dict]) -> torch.Tensor:
        """-dU_k/dr [K, N, 3] of every member from one backward pass through their own
        copies, the position dependence of the field and the potential at the atoms (a
        non-uniform field; the potential -E.r) added by the chain rule, one small
        vector-Jacobian product each. Non-gradient forces (``extra_forces``) are not
        included."""
        sources = [atom_field] + ([options["atom_potential"]] if "atom_potential" in options
                                  else [])
        differentiable = [s.requires_grad for s in sources]
        nodes = []
        for b, field, kwargs in inputs:
            copies = [field] + ([kwargs["atom_potential"]] if "atom_potential" in kwargs
                                else [])
            nodes.append([b.positions] + [t for t, on in zip(copies, differentiable,
                                                             strict=True) if on])
        total = torch.stack([o["energy"].sum() for o in outs]).sum()
        grads = torch.autograd.grad(total, [t for group in nodes for t in group],
                                    retain_graph=True, allow_unused=True)
        width, forces = len(nodes[0]), []
        chained = [s for s, on in zip(sources, differentiable, strict=True) if on]
        for m in range(len(outs)):
            g_positions, *upstream = grads[m * width:(m + 1) * width]
            g = torch.zeros_like(batch.positions) if g_positions is None else g_positions
            for source, u in zip(chained, upstream, strict=True):
                if u is None:
                    continue
                (chain,) = torch.autograd.grad(source, batch.positions, u,
                                               retain_graph=True, allow_unused=True)
                if chain is not None:
                    g = g + chain
            forces.append(-g.detach())
        return torch.stack(forces)

    def _shared_geometry(self, batch: Batch) -> FixedGeometry | None:
        """featomic's density of ``batch`` found once for every member (their descriptors
        are the same): values and first position derivatives exact
        (:class:`~fieldforce.descriptors.FixedDensity`), so energies, forces and field
        terms are those of K separate evaluations. Not with a strain (stress: the cell
        derivative is not kept): None, each member then computes its own."""
        if batch.cell.requires_grad:
            return None
        features = self.members[0].backbone.features
        density = features.fixed_density(batch.positions, batch.numbers, batch.cell,
                                         batch.pbc, batch.structure_index)
        return FixedGeometry(density, None, batch.n_atoms_per_structure.tolist())

    def extra_forces(self, batch: Batch, positions: torch.Tensor, atom_field: torch.Tensor,
                     out: dict[str, torch.Tensor], create_graph: bool = False
                     ) -> torch.Tensor | None:
        """The members' mean non-gradient forces [N, 3] eV/Å (None: none has any)."""
        parts = [member.extra_forces(batch, positions, atom_field, o,
                                     create_graph=create_graph)
                 for member, o in zip(self.members, self._member_outputs, strict=True)]
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        return torch.stack(parts).sum(0) / len(self.members)

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, frames: Sequence[Frame], weights: dict[str, float]) -> dict:
        raise ConfigError("a committee is assembled from trained models, not trained: train "
                          "the members (one training file, different training.seed), then "
                          "fieldforce committee MODEL MODEL ... -o committee.pt")


__all__ = ["CommitteeModel", "CommitteeSettings"]
