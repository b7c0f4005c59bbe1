"""The latent-charge model (Latent Ewald Summation, LES): U = U_short + U_Coulomb[q(R)].

Per atom i (DESIGN.md, "Latent charges"), on the shared backbone
(:mod:`fieldforce.models.backbone`):

* h_i: the backbone's latent vector; e_i = s_E e(h_i) + b(Z_i) the short-range
  atomic energy, U_short = sum_i e_i;
* q_i = s_q c(h_i) - (sum_{j in S} s_q c(h_j) - Q_S) / N_S: one hidden charge per atom
  (e), shifted per structure S so that the charges sum exactly to its net charge
  Q_S (``batch.total_charge``); s_q is a fixed charge unit (:meth:`fit_statistics`);
* U_long = 1/2 sum_i (k q_i) phi_i[k q] with phi from
  :func:`fieldforce.electrostatics.coulomb_potential`: Gaussian charges of standard
  deviation ``charge_width``, the direct sum for isolated structures and Ewald /
  PME / P3M for periodic ones (one structure at a time); k = ``charge_scale``
  (e.g. 1/sqrt(eps_inf): the Coulomb energy sees screened charges, while the
  dipole, polarization and Born charges use q itself).

The model is trained on energies and forces; the charges are latent. From them:
``dipole`` M = sum_i q_i r_i (isolated; independent of the origin when neutral),
``polarization`` P (periodic; e/Å², the cell dipole on the default branch, phases in
[-pi, pi), :func:`fieldforce.electrostatics.polarization.batch_dipoles`) and Born
charges Z*_i = V dP/dr_i (``evaluate(..., born_charges=True)``).

A uniform field E (V/Å; non-uniform fields are refused: the Born-charge force
assumes a uniform one):

* isolated structures: ``energy`` = U - E.M, so -d(energy)/dr_i = -dU/dr_i + Z*_i^T E
  is the total force, by autograd, and sum_i Z*_i = Q I holds exactly;
* periodic structures: ``energy`` = U - E.(V P) with P detached (on the default
  branch; the enthalpy is multivalued), and the field force Z*_i^T E, with the LES
  phase-form Born charges and the acoustic sum rule, comes from
  :meth:`LatentChargeModel.extra_forces`. These forces are Born-charge forces, not
  the gradient of the reported energy.

``long_range: false`` is the comparison switch: the same backbone and short-range
energy, no charges, no Coulomb energy and no field coupling; the model then outputs
only ``energy``, ``energy_short_range`` and ``atomic_energies``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fieldforce.config import option
from fieldforce.data.batch import Batch, collate
from fieldforce.data.frame import Frame
from fieldforce.electrostatics.coulomb import METHODS, coulomb_potential
from fieldforce.electrostatics.polarization import batch_born_charges, batch_dipoles
from fieldforce.errors import ConfigError
from fieldforce.models.backbone import Backbone, BackboneSettings, FixedGeometry, mlp
from fieldforce.models.contract import EXTRAPOLATION, FieldModel, output
from fieldforce.models.learned_charges import settle_charge_sign

#: charge unit s_q (e) when the training data have no charge or Born-charge labels:
#: the untrained charges start small, a few hundredths of e.
DEFAULT_CHARGE_UNIT = 0.1


@dataclass(kw_only=True)
class LatentSettings(BackboneSettings):
    """The ``model:`` section of ``family: latent``."""

    family: str = option("latent", "model family")
    # LES's sigma = 1 Å is the width of the pair kernel erf(r / (sqrt(2) sigma)) / r, i.e.
    # per-charge width 1/sqrt(2)
    charge_width: float = option(1.0 / math.sqrt(2.0), "standard deviation of each "
                                 "Gaussian charge, Å (0: point charges)", minimum=0)
    long_range: bool = option(True, "false: short-range energy only (same backbone, no "
                              "charges), for comparison")
    charge_scale: float = option(1.0, "multiplies the charges in the Coulomb energy only "
                                 "(1/sqrt(eps_inf) for solids)", exclusive_minimum=0)
    charge_unit: float | None = option(None, "s_q, e: null = from the charge or Born-charge "
                                       "labels a loss term uses (their RMS), else "
                                       f"{DEFAULT_CHARGE_UNIT} e", exclusive_minimum=0)
    charge_sign: str | None = option(None, "how the charges' global sign was fixed, set "
                                     "by training: by the data (dipoles, Born charges, "
                                     "fields, net charges) or by the convention that "
                                     "charges anticorrelate with electronegativity")
    charge_network: str = option("latent", "what the charges are read from: latent (a "
                                 "linear head on the energy's latent h_i) or separate (their "
                                 "own network on the standardised descriptors and the "
                                 "species, plus a linear path, as the reference LES code)",
                                 choices=("latent", "separate"))
    charge_hidden: list[int] = option([32, 16], "hidden widths of the separate charge "
                                      "network (charge_network: separate)", minimum=1)
    accuracy: float = option(1e-5, "relative accuracy of the Ewald/PME/P3M sums",
                             exclusive_minimum=0, exclusive_maximum=1)
    method: str = option("auto", "Coulomb sum for periodic structures (isolated: direct)",
                         choices=("auto", *(m for m in METHODS if m != "direct")))


class LatentChargeModel(FieldModel):
    """Short-range energy + Coulomb energy of latent Gaussian charges (module docstring).

    Output of ``model(batch, atom_field)``: ``energy`` [B] eV (with the field term),
    ``energy_short_range`` [B], ``atomic_energies`` [N] (short-range) and, with
    ``long_range``: ``energy_long_range`` [B], ``energy_zero_field`` [B] (U),
    ``charges`` [N] e, ``dipole`` [B, 3] e·Å (isolated: sum q r; periodic: the
    cell dipole V P), ``polarization`` [B, 3] e/Å² (periodic; zero rows for isolated
    structures, where it is not defined).
    """

    family = "latent"
    settings_class = LatentSettings
    outputs = (
        output("charges", requires_charges=True, description="latent charges q_i"),
        output("dipole", requires_charges=True,
               description="isolated: sum_i q_i r_i; periodic: the cell dipole V P"),
        output("polarization", periodic_only=True, requires_charges=True,
               description="phase-form polarization on the default branch"),
        output("energy_zero_field", like="energy", role="component", requires_charges=True,
               description="U = U_short + U_long, without the field term"),
        output("energy_short_range", like="energy", role="component",
               description="U_short, the backbone's energy"),
        output("energy_long_range", like="energy", role="component", requires_charges=True,
               description="Coulomb energy of the latent charges"),
        output("atomic_energies", like="energy", per_atom=True, role="detail",
               description="short-range atomic energies"),
        EXTRAPOLATION,
    )
    #: the field force Z*^T E assumes a uniform field (see the calculator)
    field_support = "uniform"
    default_loss_weights = {"energy": 1.0, "forces": 100.0}

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.backbone = Backbone.from_settings(self.settings)
        self.config["species"] = self.backbone.species
        self.config["descriptor"]["species"] = self.backbone.species  # what it was built with
        self.long_range = self.settings.long_range
        if self.long_range:
            if self.settings.charge_network == "separate":
                # the descriptors carry no central species: the species enter one-hot
                inputs = self.backbone.features.n_invariant + len(self.backbone.species)
                self.charge_net = mlp([inputs, *self.settings.charge_hidden, 1])
                self.charge_head = nn.Linear(inputs, 1)  # the linear path
            else:
                self.charge_head = nn.Linear(self.backbone.width, 1)
            unit = self.settings.charge_unit or DEFAULT_CHARGE_UNIT
            self.register_buffer("charge_unit", torch.tensor(float(unit), dtype=torch.float64))
        self.double()

    @property
    def has_charges(self) -> bool:
        """Whether the model has charges (and so dipoles, polarization, Born charges)."""
        return self.long_range

    # -- statistics of the training data ------------------------------------

    @torch.no_grad()
    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Backbone statistics (features, energy baseline and scale) and the charge unit.

        The charge unit is ``model.charge_unit`` when set, else the RMS of the labelled
        charges, else of the labelled Born charges' isotropic parts, else
        :data:`DEFAULT_CHARGE_UNIT`. (The trainer passes only the labels its loss uses,
        unless ``training.unused_labels: statistics``.)
        """
        batch = collate(frames)
        self.backbone.fit_statistics(batch)
        if not self.long_range or self.settings.charge_unit is not None:
            return
        unit = None
        if "charges" in batch.labels and batch.atom_mask("charges").any():
            unit = batch.labels["charges"][batch.atom_mask("charges")].pow(2).mean().sqrt()
        elif "born_charges" in batch.labels and batch.atom_mask("born_charges").any():
            z = batch.labels["born_charges"][batch.atom_mask("born_charges")]
            unit = torch.diagonal(z, dim1=-2, dim2=-1).mean(-1).pow(2).mean().sqrt()
        if unit is not None and float(unit) > 1e-3:
            self.charge_unit.copy_(unit)

    # -- the sign of the charges --------------------------------------------

    @torch.no_grad()
    def settle(self, frames: Sequence[Frame], terms: Sequence[str]) -> dict | None:
        """Fix the charges' global sign where the data do not.

        q -> -q leaves the energy and forces of neutral structures at zero field
        unchanged (the Coulomb energy is quadratic in q), so such data cannot choose it.
        Dipole, Born-charge, charge or polarization terms, frames in a field or with a
        net charge do. Otherwise the convention: the charges anticorrelate with Pauling
        electronegativity over the training atoms (water: oxygen negative; see
        :func:`~fieldforce.models.learned_charges.settle_charge_sign`); the charge head's output
        is negated when they do not (energies and forces unchanged).
        Recorded as ``model.charge_sign``.
        """
        if not self.long_range:
            return None

        def negate() -> None:
            outputs = [self.charge_head]
            if self.settings.charge_network == "separate":
                outputs.append(self.charge_net[-1])
            for layer in outputs:
                layer.weight.neg_()
                layer.bias.neg_()

        return settle_charge_sign(self, frames, terms, negate)

    # -- forward -------------------------------------------------------------

    def latent_charges(self, h: torch.Tensor, batch: Batch,
                       invariant: torch.Tensor | None = None) -> torch.Tensor:
        """Charges [N] e, summing to each structure's net charge: from the latent h
        [N, H], or with ``charge_network: separate`` from the invariants [N, F0]."""
        if self.settings.charge_network == "separate":
            x = self.backbone.standardise(invariant)
            onehot = nn.functional.one_hot(self.backbone.species_index(batch.numbers),
                                           len(self.backbone.species)).to(x.dtype)
            x = torch.cat([x, onehot], dim=1)
            raw = self.charge_unit * (self.charge_net(x) + self.charge_head(x))[:, 0]
        else:
            raw = self.charge_unit * self.charge_head(h)[:, 0]
        n_atoms = batch.n_atoms_per_structure.to(raw.dtype)
        excess = (batch.sum_per_structure(raw) - batch.total_charge.to(raw)) / n_atoms
        return raw - excess[batch.structure_index]

    def long_range_energy(self, batch: Batch, charges: torch.Tensor) -> torch.Tensor:
        """Coulomb energy [B] eV of the Gaussian charges ``charge_scale`` x q, per structure."""
        q = self.settings.charge_scale * charges
        width = self.settings.charge_width
        widths = torch.full_like(q, width) if width > 0 else None
        energies = []
        for b in range(batch.n_structures):
            rows = batch.structure_index == b
            pbc = batch.pbc[b].detach().cpu().numpy()
            phi = coulomb_potential(batch.positions[rows], q[rows], batch.cell[b], pbc,
                                    method=self.settings.method if pbc.any() else "direct",
                                    accuracy=self.settings.accuracy,
                                    widths=None if widths is None else widths[rows])
            energies.append(0.5 * (q[rows] * phi).sum())
        return torch.stack(energies)

    @staticmethod
    def uniform_field(batch: Batch, atom_field: torch.Tensor) -> torch.Tensor:
        """The uniform field of each structure [B, 3] V/Å; a non-uniform one is an error."""
        n_atoms = batch.n_atoms_per_structure.to(atom_field.dtype)
        field = batch.sum_per_structure(atom_field) / n_atoms[:, None]
        spread = (atom_field.detach() - field.detach()[batch.structure_index]).abs().max()
        if float(spread) > 1e-9 * (1.0 + float(atom_field.detach().abs().max())):
            raise ConfigError("the latent-charge model supports uniform fields only: its field "
                              "force Z*^T E assumes the same field at every atom")
        return field

    def forward(self, batch: Batch, atom_field: torch.Tensor,
                geometry: FixedGeometry | None = None) -> dict[str, torch.Tensor]:
        """Energies, charges, dipoles and polarization (see the class docstring);
        ``geometry``: the batch's cached geometry while training."""
        feats = self.backbone.batch_features(batch, equivariant=False, geometry=geometry)
        h = self.backbone.encode(batch, feats["invariant"], geometry)
        atomic = self.backbone.atomic_energy(h, batch.numbers)
        short = batch.sum_per_structure(atomic)
        out = {"atomic_energies": atomic, "energy_short_range": short,
               "extrapolation": self.backbone.extrapolation(feats["invariant"], batch.numbers)}
        if not self.long_range:
            out["energy"] = short
            return out
        charges = self.latent_charges(h, batch, feats["invariant"])
        long = self.long_range_energy(batch, charges)
        dipole = batch_dipoles(batch.positions, charges, batch.cell, batch.pbc,
                               batch.structure_index)
        periodic = batch.pbc.any(dim=1)
        volume = torch.where(periodic, torch.linalg.det(batch.cell).abs(),
                             torch.ones_like(short))
        polarization = torch.where(periodic[:, None], dipole / volume[:, None],
                                   torch.zeros_like(dipole))
        field = self.uniform_field(batch, atom_field)
        # periodic: the branch-dependent cell dipole enters the energy as a number only;
        # the field force is Z*^T E (extra_forces)
        coupled = torch.where(periodic[:, None], dipole.detach(), dipole)
        zero_field = short + long
        out.update(energy_long_range=long, energy_zero_field=zero_field, charges=charges,
                   dipole=dipole, polarization=polarization,
                   energy=zero_field - (field * coupled).sum(-1))
        return out

    # -- training ------------------------------------------------------------------------

    def prepare_training(self, frames: Sequence[Frame]) -> dict:
        """The training frames' densities and pairs (:meth:`Backbone.geometry_cache`)."""
        return self.backbone.geometry_cache(frames)

    def training_options(self, frames: Sequence[Frame], terms: Sequence[str], cache: Any,
                         train: bool) -> dict[str, Any]:
        return {"geometry": self.backbone.cached_geometry(frames, cache)}

    def extra_forces(self, batch: Batch, positions: torch.Tensor, atom_field: torch.Tensor,
                     out: dict[str, torch.Tensor], create_graph: bool = False
                     ) -> torch.Tensor | None:
        """Z*_i^T E [N, 3] eV/Å for the atoms of periodic structures in a non-zero field.

        None when there are none (no cost). Isolated structures get their field force
        from the energy's gradient instead. Born charges: LES phase form, acoustic sum
        rule on (``out['born_charges']`` is reused when already computed).
        """
        if not self.long_range:
            return None
        field = self.uniform_field(batch, atom_field)
        active = batch.pbc.any(dim=1) & (field.detach().abs().amax(dim=1) > 0)
        if not bool(active.any()):
            return None
        born = out.get("born_charges")
        if born is None:
            # only the lattice directions the field projects on enter Z*ᵀE
            eye = torch.eye(3, dtype=batch.cell.dtype, device=batch.cell.device)
            lattice = torch.where(batch.pbc.any(dim=1)[:, None, None], batch.cell,
                                  eye.expand_as(batch.cell))
            projection = torch.einsum("sac,sc->sa", lattice, field)[active]
            directions = [a for a in range(3) if bool(projection[:, a].abs().max() > 0)]
            born = batch_born_charges(positions, out["charges"], batch.cell, batch.pbc,
                                      batch.structure_index, total_charge=batch.total_charge,
                                      acoustic_sum_rule=True, create_graph=create_graph,
                                      structures=active, directions=directions)
        forces = torch.einsum("nab,na->nb", born, field[batch.structure_index])
        return forces * active[batch.structure_index, None].to(forces)


__all__ = ["DEFAULT_CHARGE_UNIT", "LatentChargeModel", "LatentSettings"]
