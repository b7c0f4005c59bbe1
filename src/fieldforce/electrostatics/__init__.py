"""Electrostatics on torch-pme (layer 3, physics kernels): Coulomb sums, fields, the
Coulomb operator of one geometry, polarization and Born charges.

* :mod:`~fieldforce.electrostatics.coulomb` — potential, energy and field of point
  or Gaussian charges; isolated (direct sum), 3D periodic (Ewald, PME, P3M) and
  slabs (Yeh-Berkowitz correction); all differentiable.
* :mod:`~fieldforce.electrostatics.operator` — :class:`CoulombOperator`, the Coulomb
  matrix of one geometry built once (neighbour lists, splitting, torch-pme
  calculator) and applied to many charge vectors, e.g. by charge-equilibration
  solvers; also its energy and dense matrix.
* :mod:`~fieldforce.electrostatics.equilibration` — charge equilibration (QEq): the
  charges minimising electronegativity + hardness + Coulomb energy at fixed group
  charges, a dense differentiable solve or preconditioned CG with implicit
  derivatives; bonded fragments for insulators.
* :mod:`~fieldforce.electrostatics.preconditioner` — the CG solver's preconditioner: the
  sparse, positive-definite short-range part of the QEq matrix, inverted by multigrid.
* :mod:`~fieldforce.electrostatics.parameters` — splitting, cutoff and mesh from a
  requested accuracy, cached per volume.
* :mod:`~fieldforce.electrostatics.polarization` — dipole / polarization with a
  continuous branch, Born effective charges by autograd (one structure or a whole
  batch), uniform-field forces.
"""

from fieldforce.electrostatics.coulomb import (
    METHODS,
    coulomb_energy,
    coulomb_field,
    coulomb_potential,
    direct_potential,
    fourier_potential,
)
from fieldforce.electrostatics.equilibration import Equilibrium, equilibrate, fragments
from fieldforce.electrostatics.operator import CoulombOperator
from fieldforce.electrostatics.parameters import SplittingParameters, splitting_parameters
from fieldforce.electrostatics.polarization import (
    PolarizationTracker,
    batch_born_charges,
    batch_dipoles,
    born_charges,
    field_forces,
    polarization,
)

__all__ = ["METHODS", "CoulombOperator", "Equilibrium", "PolarizationTracker",
           "SplittingParameters",
           "batch_born_charges", "batch_dipoles", "born_charges",
           "coulomb_energy", "coulomb_field", "coulomb_potential", "direct_potential",
           "equilibrate", "fragments",
           "field_forces", "fourier_potential", "polarization", "splitting_parameters"]
