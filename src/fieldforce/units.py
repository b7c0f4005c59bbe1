"""Units: the one place where foreign units are turned into fieldforce's.

Internal units (used everywhere past the data readers):

=================  ==============  =====================================
dimension          internal unit   note
=================  ==============  =====================================
energy             eV
length             Å
charge             e               proton = +1
force              eV/Å
stress             eV/Å³
dipole             e·Å             1 e·Å = 4.8032 D
polarizability     e·Å²/V          volume form: α[Å³] = k_e · α[e·Å²/V]
field              V/Å             1 V/Å = 10 GV/m = 100 MV/cm
polarization       e/Å²            cell dipole / volume
time               fs
=================  ==============  =====================================

Constants are CODATA 2018 (the values ASE and most DFT codes of 2020-2026 use;
they differ from CODATA 2022 in the 10th digit, far below any DFT error). The
tests check them digit by digit against the CODATA tables.

A unit string is parsed against a *dimension*, so the same string can mean
different things only where physics says so: a polarizability given as a volume
(``angstrom^3``, ``bohr^3``) is divided by k_e = 1/(4 pi eps0), and ``au``
means the atomic unit of whatever dimension is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fieldforce.errors import UnitError

# --- CODATA 2018 ------------------------------------------------------------
ELEMENTARY_CHARGE_C = 1.602176634e-19  # C (exact)
SPEED_OF_LIGHT_M_S = 299792458.0  # m/s (exact)
AVOGADRO = 6.02214076e23  # 1/mol (exact)
EPSILON0_SI = 8.8541878128e-12  # F/m
BOHR_M = 0.529177210903e-10  # m
HARTREE_J = 4.3597447222071e-18  # J
HBAR_JS = 6.62607015e-34 / (2 * math.pi)  # J s (h is exact)

#: Bohr radius in Å.
BOHR = BOHR_M * 1e10
#: Hartree in eV.
HARTREE = HARTREE_J / ELEMENTARY_CHARGE_C
#: Coulomb constant k_e = 1/(4 pi eps0) in eV·Å/e².
COULOMB_CONSTANT = ELEMENTARY_CHARGE_C / (4.0 * math.pi * EPSILON0_SI) * 1e10
#: Vacuum permittivity in e²/(eV·Å).
EPSILON0 = 1.0 / (4.0 * math.pi * COULOMB_CONSTANT)
#: One Debye (1e-21/c C·m) in e·Å.
DEBYE = 1e-21 / SPEED_OF_LIGHT_M_S / ELEMENTARY_CHARGE_C / 1e-10
#: One kcal/mol in eV.
KCAL_PER_MOL = 4184.0 / AVOGADRO / ELEMENTARY_CHARGE_C
#: One kJ/mol in eV.
KJ_PER_MOL = 1000.0 / AVOGADRO / ELEMENTARY_CHARGE_C
#: Atomic unit of electric field (E_h / (e a0)) in V/Å.
AU_FIELD = HARTREE / BOHR
#: Atomic unit of dipole (e a0) in e·Å.
AU_DIPOLE = BOHR
#: Atomic unit of polarizability (e² a0² / E_h) in e·Å²/V.
AU_POLARIZABILITY = BOHR**2 / HARTREE
#: Atomic unit of force (E_h / a0) in eV/Å.
AU_FORCE = HARTREE / BOHR
#: Atomic unit of time (hbar / E_h) in fs.
AU_TIME = HBAR_JS / HARTREE_J * 1e15
#: One MV/cm in V/Å.
MV_PER_CM = 1e6 / 1e-2 * 1e-10
#: One kV/cm in V/Å.
KV_PER_CM = 1e3 / 1e-2 * 1e-10
#: One µC/cm² in e/Å².
UC_PER_CM2 = 1e-6 / 1e-4 / ELEMENTARY_CHARGE_C * 1e-20
#: One GPa in eV/Å³.
GPA = 1e9 / ELEMENTARY_CHARGE_C * 1e-30

INTERNAL_UNITS: dict[str, str] = {
    "energy": "eV",
    "length": "angstrom",
    "charge": "e",
    "force": "eV/angstrom",
    "stress": "eV/angstrom^3",
    "dipole": "e*angstrom",
    "polarizability": "e*angstrom^2/V",
    "field": "V/angstrom",
    "potential": "V",  # also electronegativities (eV per e)
    "polarization": "e/angstrom^2",
    "time": "fs",
    "dimensionless": "1",  # scores and ratios (e.g. a model's extrapolation measure)
}

# Factor that multiplies a value in the named unit to give the internal unit.
_UNITS: dict[str, dict[str, float]] = {
    "energy": {
        "ev": 1.0,
        "mev": 1e-3,
        "hartree": HARTREE,
        "ha": HARTREE,
        "rydberg": HARTREE / 2,
        "ry": HARTREE / 2,
        "kcal/mol": KCAL_PER_MOL,
        "kj/mol": KJ_PER_MOL,
        "au": HARTREE,
    },
    "length": {"angstrom": 1.0, "bohr": BOHR, "nm": 10.0, "au": BOHR},
    "charge": {"e": 1.0, "au": 1.0},
    "force": {
        "ev/angstrom": 1.0,
        "hartree/bohr": AU_FORCE,
        "kcal/mol/angstrom": KCAL_PER_MOL,
        "au": AU_FORCE,
    },
    "stress": {
        "ev/angstrom^3": 1.0,
        "gpa": GPA,
        "kbar": 0.1 * GPA,
        "hartree/bohr^3": HARTREE / BOHR**3,
        "au": HARTREE / BOHR**3,
    },
    "dipole": {"e*angstrom": 1.0, "e*bohr": BOHR, "debye": DEBYE, "au": BOHR},
    "polarizability": {
        "e*angstrom^2/v": 1.0,
        # Volume forms: alpha[volume] = k_e * alpha[e·Å²/V].
        "angstrom^3": 1.0 / COULOMB_CONSTANT,
        "bohr^3": BOHR**3 / COULOMB_CONSTANT,
        "au": AU_POLARIZABILITY,
    },
    "field": {
        "v/angstrom": 1.0,
        "v/nm": 0.1,
        "v/m": 1e-10,
        "mv/cm": MV_PER_CM,
        "kv/cm": KV_PER_CM,
        "gv/m": 1e9 * 1e-10,
        "hartree/(e*bohr)": AU_FIELD,
        "au": AU_FIELD,
    },
    "polarization": {
        "e/angstrom^2": 1.0,
        "e/bohr^2": 1.0 / BOHR**2,
        "uc/cm^2": UC_PER_CM2,
        "c/m^2": 100.0 * UC_PER_CM2,
        "au": 1.0 / BOHR**2,
    },
    "time": {"fs": 1.0, "ps": 1000.0, "au": AU_TIME},
}

_ALIASES = {
    "å": "angstrom",
    "ang": "angstrom",
    "angstroms": "angstrom",
    "a": "angstrom",
    "a.u.": "au",
    "atomic": "au",
    "d": "debye",
    "μc": "uc",
    "µc": "uc",
    "hartrees": "hartree",
    "eh": "hartree",
    "bohrs": "bohr",
    "a0": "bohr",
}


@dataclass(frozen=True)
class Unit:
    """A parsed unit: its canonical spelling, dimension and factor to internal."""

    name: str
    dimension: str
    factor: float


def _normalize(unit: str) -> str:
    s = unit.strip().lower().replace(" ", "").replace("**", "^").replace("·", "*")
    s = s.replace("³", "^3").replace("²", "^2")
    # Replace alias tokens inside compound units (e*ang -> e*angstrom).
    parts = []
    token = ""
    for ch in s:
        if ch in "*/^()":
            parts.append(_ALIASES.get(token, token))
            parts.append(ch)
            token = ""
        else:
            token += ch
    parts.append(_ALIASES.get(token, token))
    s = "".join(parts)
    return s


def dimensions() -> list[str]:
    """Names of the physical dimensions fieldforce knows."""
    return list(_UNITS)


def known_units(dimension: str) -> list[str]:
    """Unit strings accepted for ``dimension``."""
    return sorted(_UNITS[dimension])


def parse_unit(unit: str, dimension: str | None = None) -> Unit:
    """Parse a unit string, optionally requiring a dimension.

    Parameters
    ----------
    unit
        e.g. ``"hartree"``, ``"e*bohr"``, ``"Debye"``, ``"bohr^3"``, ``"MV/cm"``.
    dimension
        e.g. ``"dipole"``. When given, the unit must be one of that dimension;
        ``"au"`` is only accepted this way.

    Raises
    ------
    UnitError
        one sentence naming the unit, the expected dimension and the accepted
        spellings.
    """
    if not isinstance(unit, str) or not unit.strip():
        raise UnitError(f"unit must be a non-empty string, got {unit!r}")
    key = _normalize(unit)
    if dimension is not None:
        if dimension not in _UNITS:
            raise UnitError(f"unknown dimension {dimension!r}; known: {', '.join(_UNITS)}")
        table = _UNITS[dimension]
        if key in table:
            return Unit(key, dimension, table[key])
        other = [d for d, t in _UNITS.items() if key in t and key != "au"]
        hint = f" ({unit!r} is a unit of {other[0]})" if other else ""
        raise UnitError(
            f"unit {unit!r} is not a unit of {dimension}{hint}; "
            f"expected one of: {', '.join(sorted(table))}"
        )
    if key == "au":
        raise UnitError("unit 'au' is ambiguous without a dimension (energy? dipole? field?)")
    matches = [d for d, t in _UNITS.items() if key in t]
    if not matches:
        every = sorted({u for t in _UNITS.values() for u in t})
        raise UnitError(f"unknown unit {unit!r}; known units: {', '.join(every)}")
    return Unit(key, matches[0], _UNITS[matches[0]][key])


def to_internal(value, unit: str, dimension: str | None = None):
    """Convert ``value`` (scalar or array) from ``unit`` to the internal unit."""
    factor = parse_unit(unit, dimension).factor
    if isinstance(value, (int, float)):
        return value * factor
    return np.asarray(value, dtype=float) * factor


def from_internal(value, unit: str, dimension: str | None = None):
    """Convert ``value`` from the internal unit to ``unit``."""
    factor = parse_unit(unit, dimension).factor
    if isinstance(value, (int, float)):
        return value / factor
    return np.asarray(value, dtype=float) / factor


def convert(value, from_unit: str, to_unit: str, dimension: str | None = None):
    """Convert between two units of the same dimension."""
    src = parse_unit(from_unit, dimension)
    dst = parse_unit(to_unit, dimension or src.dimension)
    if src.dimension != dst.dimension:
        raise UnitError(
            f"cannot convert {from_unit!r} ({src.dimension}) to {to_unit!r} ({dst.dimension})"
        )
    ratio = src.factor / dst.factor
    if isinstance(value, (int, float)):
        return value * ratio
    return np.asarray(value, dtype=float) * ratio
