"""Simulation (layer 6): the ASE calculator, molecular dynamics with observers."""

from fieldforce.simulation.calculator import FieldForceCalculator
from fieldforce.simulation.md import run_md

__all__ = ["FieldForceCalculator", "run_md"]
