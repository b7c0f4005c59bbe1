"""Electrostatics of point charges on torch-pme (work in progress, see issue 4).

Available: direct sums for isolated systems; Ewald, PME and P3M for 3D periodic
cells with tuned parameters; everything differentiable.
"""

from fieldforce.electrostatics.coulomb import (
    METHODS,
    coulomb_energy,
    coulomb_potential,
    direct_potential,
    fourier_potential,
)

__all__ = ["METHODS", "coulomb_energy", "coulomb_potential", "direct_potential",
           "fourier_potential"]
