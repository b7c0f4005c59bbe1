"""The one central-difference helper the physics tests share."""

import numpy as np


def position_derivative(fn, atoms, atom: int, axis: int, h: float):
    """[fn(r + h e) - fn(r - h e)] / 2h for one Cartesian coordinate of one atom.

    ``fn`` takes an ASE Atoms and returns a number or an array (energy, dipole, ...).
    """
    values = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[atom, axis] += sign * h
        values.append(np.asarray(fn(moved), dtype=float))
    return (values[0] - values[1]) / (2 * h)
