"""Charge equilibration on the shared backbone (QEq / 4G-HDNNP): U = U_short + E_Q[q*].

Per atom i, from the backbone's latent h_i (:mod:`fieldforce.models.backbone`):

* e_i = s_E e(h_i) + b(Z_i): the short-range atomic energy, U_short = sum_i e_i;
* chi_i = s_chi x(h_i) + chi(Z_i): an electronegativity (V = eV/e), environment-dependent;
* per element a hardness J_Z (V/e) and a Gaussian width w_Z (Å), learned, positive
  (J = softplus, w = w0_Z exp(p_Z) with w0_Z the covalent radius).

The charges minimise E_Q = sum_i (chi_i + phi_ext(r_i)) q_i + 1/2 q.H q (Gaussian charges,
their Coulomb energy and self energies, plus the hardness) at fixed group charges: one
linear solve per structure, :func:`fieldforce.electrostatics.equilibration.equilibrate`:
dense (autograd through the LU) for training and small structures, conjugate gradients
on the Coulomb operator with implicit derivatives for large cells (``solver``; the
solver's docstring states the costs). Unlike
latent charges, these respond to anything far away that changes the electronegativities
or the external potential: a protonation at the other end of a chain, a charged defect,
an applied field, so the model has an electronic polarizability of its own.

``conduction``:

* ``conductor``: one group per structure, its net charge ``total_charge`` (charge flows
  anywhere: metals, conjugated molecules, and the usual 4G-HDNNP choice);
* ``insulator``: one group per fragment (atoms bonded within ``bond_scale`` times the sum
  of covalent radii), each neutral: no charge crosses between molecules however far
  apart, the unphysical long-range transfer of plain QEq. A charged structure must then
  be one fragment.

The external potential phi_ext [N] V at the atoms (``atom_potential``, from
:func:`fieldforce.models.derivatives.atom_potentials`: -E.r for a uniform field, a field
object's potential otherwise) adds to chi, so the field force, the field-induced charge
flow and the energy -mu.E are all in E_Q. Isolated structures take any field with a
potential; slabs one along their normal. A 3D-periodic cell takes a uniform field in the
insulator mode: the potential is -E.r with every molecule made whole (its atoms at their
bond vectors from each other); as each molecule is neutral, the choice of periodic images
drops out and the coupling is -E.sum_m mu_m, the field times the molecular dipoles'
sum. A conductor in a 3D cell has no equilibrium in a uniform field (charge would flow
without bound) and an infinite polarizability: refused (its polarizability output is
zero); so is a bonded network that spans the cell.

Outputs: ``charges`` q*, ``dipole`` (isolated: sum q r; periodic: the cell dipole),
``polarization`` (periodic), ``polarizability`` = dmu/dE at fixed geometry (isolated:
X^T S X, exact from the same solve; slabs: the normal component n n^T; 3D-periodic
insulators: with X the made-whole positions, the cell's electronic dmu/dE, V times
dP/dE; 3D conductors: zero, see above), the energy components and the
electronegativities. Born charges come from the autograd helper (charges differentiable
through the solve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fieldforce.config import option
from fieldforce.data.batch import Batch, collate
from fieldforce.data.frame import Frame
from fieldforce.electrostatics.coulomb import METHODS
from fieldforce.electrostatics.equilibration import (
    PRECONDITIONERS,
    equilibrate,
    fragments,
)
from fieldforce.electrostatics.operator import CoulombOperator
from fieldforce.electrostatics.polarization import batch_dipoles
from fieldforce.errors import ConfigError, DataError
from fieldforce.models.backbone import Backbone, BackboneSettings, FixedGeometry
from fieldforce.models.contract import EXTRAPOLATION, FieldModel, output
from fieldforce.models.learned_charges import settle_charge_sign


def _extrapolate(history: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The starting guess of a warm-started solve from the charges of the last calls
    (oldest first): linear extrapolation 2 q_n - q_(n-1) from two, an error second order
    in an MD step; the last charges from one; None without."""
    if len(history) >= 2:
        return 2 * history[-1] - history[-2]
    return history[-1] if history else None


@dataclass(kw_only=True)
class QEqSettings(BackboneSettings):
    """The ``model:`` section of ``family: qeq``."""

    family: str = option("qeq", "model family")
    conduction: str = option("conductor", "conductor: one charge constraint per structure "
                             "(charge flows anywhere); insulator: each bonded fragment "
                             "neutral (no charge transfer between molecules)",
                             choices=("conductor", "insulator"))
    bond_scale: float = option(1.2, "insulator: atoms closer than this times the sum of "
                               "their covalent radii are bonded (fragments)",
                               exclusive_minimum=0)
    hardness: float = option(5.0, "initial hardness J_Z of every element, V/e (learned)",
                             exclusive_minimum=0)
    electronegativity_unit: float = option(1.0, "s_chi, V: the scale of the learned "
                                           "electronegativities", exclusive_minimum=0)
    accuracy: float = option(1e-6, "relative accuracy of the Ewald/PME/P3M sums",
                             exclusive_minimum=0, exclusive_maximum=1)
    method: str = option("auto", "Coulomb sum for periodic structures (isolated: direct)",
                         choices=("auto", *(m for m in METHODS if m != "direct")))
    solver: str = option("auto", "charge solve: dense (LU, any derivative order), cg "
                         "(conjugate gradients on the Coulomb operator, first derivatives: "
                         "MD of large cells) or auto (dense while training, for isolated "
                         "structures up to dense_max_atoms atoms and periodic ones up to "
                         "dense_max_atoms/32; cg beyond)", choices=("auto", "dense", "cg"))
    dense_max_atoms: int = option(2000, "auto: the largest isolated structure solved "
                                  "densely (periodic: a 32nd of it, the dense Ewald "
                                  "matrix costing N operator applications: in MD the "
                                  "preconditioned, warm-started CG is as fast at ~50 "
                                  "atoms and 4x faster at 192, benchmarks/qeq_cost.py)", minimum=1)
    solver_tol: float = option(1e-9, "cg: relative residual of the charge solve",
                               exclusive_minimum=0, exclusive_maximum=1)
    solver_preconditioner: str = option("short-range", "cg: the sparse short-range part "
                                        "of the QEq matrix inverted by multigrid, or its "
                                        "diagonal (jacobi)", choices=PRECONDITIONERS)
    solver_warm_start: bool = option(True, "cg: start each structure's solve from the "
                                     "charges of the previous calls for the same atoms "
                                     "(the last MD steps, extrapolated linearly)")
    charge_sign: str | None = option(None, "how the charges' global sign was fixed, set "
                                     "by training (see the latent family)")


class QEqModel(FieldModel):
    """Short-range energy + charge-equilibration energy (module docstring).

    ``model(batch, atom_field, atom_potential)``: ``energy`` [B] eV (U_short + E_Q at the
    solution, the external potential included), ``energy_short_range`` [B],
    ``energy_electrostatic`` [B] (E_Q), ``charges`` [N] e, ``dipole`` [B, 3] e·Å,
    ``polarization`` [B, 3] e/Å² (periodic; zero rows otherwise), ``polarizability``
    [B, 3, 3] e·Å²/V, ``electronegativities`` [N] V, ``atomic_energies`` [N] eV.
    """

    family = "qeq"
    settings_class = QEqSettings
    outputs = (
        output("charges", requires_charges=True, description="equilibrated charges q*"),
        output("dipole", requires_charges=True,
               description="isolated: sum_i q_i r_i; periodic: the cell dipole V P"),
        output("polarization", periodic_only=True, requires_charges=True,
               description="phase-form polarization on the default branch"),
        output("polarizability", description="electronic dmu/dE at fixed geometry, from "
               "the charges' response (slabs: normal component; 3D-periodic "
               "conductors: zero)"),
        output("energy_short_range", like="energy", role="component",
               description="U_short, the backbone's energy"),
        output("energy_electrostatic", like="energy", role="component",
               description="E_Q at the equilibrated charges, external potential included"),
        output("atomic_energies", like="energy", per_atom=True, role="detail",
               description="short-range atomic energies"),
        output("electronegativities", per_atom=True, shape=(), dimension="potential",
               role="detail", description="learned electronegativities chi_i (without "
               "the external potential)"),
        EXTRAPOLATION,
    )
    field_support = "nonuniform"
    needs_potential = True
    default_loss_weights = {"energy": 1.0, "forces": 100.0}

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        from ase.data import covalent_radii

        self.backbone = Backbone.from_settings(self.settings)
        species = self.backbone.species
        self.config["species"] = species
        self.config["descriptor"]["species"] = species
        self.chi_head = nn.Linear(self.backbone.width, 1)
        self.chi_species = nn.Parameter(torch.zeros(len(species)))
        # softplus(raw) = J: start at the configured hardness
        raw = math.log(math.expm1(self.settings.hardness))
        self.hardness_raw = nn.Parameter(torch.full((len(species),), raw))
        self.width_log = nn.Parameter(torch.zeros(len(species)))
        #: the cg charges of the last two calls per structure (its index in the batch and
        #: atomic numbers), for the next call's starting guess; not part of the state
        self._previous_charges: dict[tuple[int, bytes], list[torch.Tensor]] = {}
        self.register_buffer("width_base", torch.tensor(
            [float(covalent_radii[z]) for z in species], dtype=torch.float64))
        self.double()

    # -- per-element parameters -------------------------------------------------------

    def hardness(self, numbers: torch.Tensor) -> torch.Tensor:
        """J_i [N] V/e."""
        return nn.functional.softplus(self.hardness_raw)[self.backbone.species_index(numbers)]

    def widths(self, numbers: torch.Tensor) -> torch.Tensor:
        """w_i [N] Å."""
        index = self.backbone.species_index(numbers)
        return self.width_base[index] * self.width_log.exp()[index]

    def electronegativities(self, h: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """chi_i [N] V from the latent [N, H]."""
        return (self.settings.electronegativity_unit * self.chi_head(h)[:, 0]
                + self.chi_species[self.backbone.species_index(numbers)])

    # -- statistics and sign ---------------------------------------------------------

    @torch.no_grad()
    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Backbone statistics (features, energy baseline and scale); a polarizability
        label of a 3D-periodic cell is an error for a conductor (whose polarizability is
        infinite)."""
        if self.settings.conduction == "conductor":
            for f in frames:
                if "polarizability" in f.labels and bool(np.all(f.atoms.pbc)):
                    raise ConfigError(
                        f"{f.where()}: a conductor in a 3D-periodic cell has an infinite "
                        "polarizability; train on it with conduction: insulator, or drop "
                        "the polarizability loss term for these data")
        self.backbone.fit_statistics(collate(frames))

    def settle(self, frames: Sequence[Frame], terms: Sequence[str]) -> dict | None:
        """The charges' sign (q -> -q with chi -> -chi leaves E_Q unchanged at zero field):
        :func:`fieldforce.models.learned_charges.settle_charge_sign`."""
        def negate() -> None:
            self.chi_head.weight.neg_()
            self.chi_head.bias.neg_()
            self.chi_species.neg_()

        return settle_charge_sign(self, frames, terms, negate)

    # -- forward ----------------------------------------------------------------------

    def constraints(self, batch: Batch, b: int, rows: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Group index [n], group charges [G] of structure ``b`` (its atoms ``rows``), and
        for an insulator in a 3D-periodic cell its atoms' positions with every fragment
        made whole [n, 3] (None otherwise, or where a fragment is infinite)."""
        n = int(rows.sum())
        dtype, device = batch.positions.dtype, batch.positions.device
        total = batch.total_charge[b].to(dtype).reshape(1)
        if self.settings.conduction == "conductor":
            return torch.zeros(n, dtype=torch.long, device=device), total, None
        pbc = batch.pbc[b].cpu().numpy()
        cell = batch.cell[b]
        index, unwrap, infinite = fragments(
            batch.numbers[rows].cpu().numpy(), batch.positions[rows].detach().cpu().numpy(),
            cell.detach().cpu().numpy(), pbc, self.settings.bond_scale, whole=True)
        count = int(index.max()) + 1 if n else 0
        if count > 1 and abs(float(total)) > 1e-12:
            raise DataError(f"structure {b} has a net charge of {float(total):g} e over "
                            f"{count} fragments; the insulator mode cannot tell which "
                            "fragment carries it (use conduction: conductor)")
        charges = torch.zeros(max(count, 1), dtype=dtype, device=device)
        if count == 1:
            charges[0] = total[0]
        whole = None
        if pbc.all() and not infinite.any():
            shifts = torch.as_tensor(unwrap, dtype=dtype, device=device)
            whole = batch.positions[rows] + shifts @ cell
        return torch.as_tensor(index, device=device), charges, whole

    def forward(self, batch: Batch, atom_field: torch.Tensor,
                atom_potential: torch.Tensor | None = None,
                geometry: FixedGeometry | None = None) -> dict[str, torch.Tensor]:
        """Energies, charges, dipoles, polarization and polarizability (class docstring);
        ``atom_potential`` [N] V (None: zero); ``geometry``: cached while training."""
        feats = self.backbone.batch_features(batch, equivariant=False, geometry=geometry)
        h = self.backbone.encode(batch, feats["invariant"], geometry)
        atomic = self.backbone.atomic_energy(h, batch.numbers)
        short = batch.sum_per_structure(atomic)
        chi = self.electronegativities(h, batch.numbers)
        if atom_potential is None:
            atom_potential = torch.zeros_like(chi)
        hardness = self.hardness(batch.numbers)
        widths = self.widths(batch.numbers)
        charges = torch.zeros_like(chi)
        energies, alphas = [], []
        latest: dict[tuple[int, bytes], list[torch.Tensor]] = {}
        for b in range(batch.n_structures):
            rows = batch.structure_index == b
            pbc = batch.pbc[b].detach().cpu().numpy()
            positions = batch.positions[rows]
            operator = CoulombOperator(positions, batch.cell[b], pbc,
                                       method=self.settings.method if pbc.any() else "direct",
                                       accuracy=self.settings.accuracy, widths=widths[rows])
            groups, group_charges, whole = self.constraints(batch, b, rows)
            potential = self._potential(atom_field[rows], atom_potential[rows],
                                        batch.cell[b], pbc, whole, b)
            probe = self._field_probe(positions, batch.cell[b], pbc, whole)
            solver = self.solver_for(int(rows.sum()), bool(pbc.any()))
            key = (b, batch.numbers[rows].cpu().numpy().tobytes())
            warm = solver == "cg" and self.settings.solver_warm_start
            history = self._previous_charges.get(key, []) if warm else []
            eq = equilibrate(operator, chi[rows] + potential, hardness[rows],
                             widths[rows], groups, group_charges, responses=probe,
                             solver=solver, tol=self.settings.solver_tol,
                             preconditioner=self.settings.solver_preconditioner,
                             initial=_extrapolate(history))
            if warm:
                latest[key] = [*history[-1:], eq.charges.detach()]
            charges = charges.index_put((rows.nonzero()[:, 0],), eq.charges)
            energies.append(eq.energy)
            alphas.append(torch.zeros(3, 3, dtype=chi.dtype, device=chi.device)
                          if probe is None else probe.T @ eq.response)
        electrostatic = torch.stack(energies)
        self._previous_charges = latest  # only the last call's: a bounded cache
        dipole = batch_dipoles(batch.positions, charges, batch.cell, batch.pbc,
                               batch.structure_index)
        periodic = batch.pbc.any(dim=1)
        volume = torch.where(periodic, torch.linalg.det(batch.cell).abs(),
                             torch.ones_like(short))
        polarization = torch.where(periodic[:, None], dipole / volume[:, None],
                                   torch.zeros_like(dipole))
        return {"energy": short + electrostatic, "energy_short_range": short,
                "energy_electrostatic": electrostatic, "charges": charges, "dipole": dipole,
                "polarization": polarization, "polarizability": torch.stack(alphas),
                "atomic_energies": atomic, "electronegativities": chi,
                "extrapolation": self.backbone.extrapolation(feats["invariant"],
                                                             batch.numbers)}

    def solver_for(self, n_atoms: int, periodic: bool) -> str:
        """The solver of one structure (the ``solver`` setting; ``auto``: dense while
        training, whose force losses need second derivatives, and for small structures)."""
        if self.settings.solver != "auto":
            return self.settings.solver
        limit = self.settings.dense_max_atoms // (32 if periodic else 1)
        return "dense" if self.training or n_atoms <= limit else "cg"

    @staticmethod
    def _field_probe(positions: torch.Tensor, cell: torch.Tensor, pbc: np.ndarray,
                     whole: torch.Tensor | None) -> torch.Tensor | None:
        """-d phi_ext / dE [n, 3] for a uniform field: the positions (slabs: their normal
        component only; 3D cells: the insulator's whole fragments), None for a
        3D-periodic conductor (whose polarizability is infinite)."""
        if pbc.all():
            return whole
        if not pbc.any():
            return positions
        normal = _normal(cell, pbc)
        return (positions @ normal)[:, None] * normal[None, :]

    def _potential(self, field: torch.Tensor, potential: torch.Tensor, cell: torch.Tensor,
                   pbc: np.ndarray, whole: torch.Tensor | None, b: int) -> torch.Tensor:
        """The external potential at the atoms [n] V: the helper's (-E.r or the field
        object's) for isolated structures and slabs (a field along their normal only);
        -E.r_whole for an insulator in a 3D cell (each fragment neutral, so only the
        positions within fragments matter and the choice of images does not)."""
        active = float(field.detach().abs().max()) > 0.0
        if not pbc.any() or not active:
            return potential if active else torch.zeros_like(potential)
        if not pbc.all():
            normal = _normal(cell, pbc).detach()
            in_plane = field.detach() - (field.detach() @ normal)[:, None] * normal
            if float(in_plane.abs().max()) > 1e-9:
                raise ConfigError(f"structure {b}: a slab takes a field along its normal "
                                  "only (its in-plane potential would not be periodic)")
            return potential
        if self.settings.conduction == "conductor":
            raise ConfigError(
                f"structure {b}: a conductor in a 3D-periodic cell has no equilibrium in a "
                "uniform field (charge would flow without bound); use conduction: "
                "insulator, whose molecules stay neutral")
        if whole is None:
            raise ConfigError(f"structure {b}: a bonded fragment spans the periodic cell (an "
                              "infinite network), so its dipole and the field's potential "
                              "are not defined in the insulator mode")
        if float((field - field.mean(0)).detach().abs().max()) > 1e-9:
            raise ConfigError(f"structure {b}: a 3D-periodic cell takes a uniform field "
                              "only")
        return -(field * whole).sum(-1)

    # -- training ---------------------------------------------------------------------

    def prepare_training(self, frames: Sequence[Frame]) -> dict:
        return self.backbone.geometry_cache(frames)

    def training_options(self, frames: Sequence[Frame], terms: Sequence[str], cache: Any,
                         train: bool) -> dict[str, Any]:
        return {"geometry": self.backbone.cached_geometry(frames, cache)}


def _normal(cell: torch.Tensor, pbc: np.ndarray) -> torch.Tensor:
    """Unit normal [3] of a slab's periodic plane."""
    normal = torch.linalg.cross(*cell[torch.as_tensor(pbc)])
    return normal / normal.norm()


__all__ = ["QEqModel", "QEqSettings"]
