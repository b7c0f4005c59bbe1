"""Units against CODATA 2018 values (https://physics.nist.gov/cuu/Constants, 2018 adjustment)."""

import numpy as np
import pytest

from fieldforce import units
from fieldforce.errors import UnitError

E = 1.602176634e-19  # C, exact


@pytest.mark.parametrize(
    ("value", "codata", "rel"),
    [
        # hartree energy in eV
        (units.HARTREE, 27.211386245988, 1e-12),
        # Bohr radius, 0.529177210903e-10 m
        (units.BOHR, 0.529177210903, 1e-12),
        # atomic unit of electric field, 5.14220674763e11 V/m
        (units.AU_FIELD, 5.14220674763e11 * 1e-10, 1e-10),
        # atomic unit of electric dipole moment, 8.4783536255e-30 C m
        (units.AU_DIPOLE, 8.4783536255e-30 / (E * 1e-10), 1e-10),
        # atomic unit of electric polarizability, 1.64877727436e-41 C^2 m^2 J^-1
        (units.AU_POLARIZABILITY, 1.64877727436e-41 / (E * 1e-20), 1e-10),
        # atomic unit of force, 8.2387234983e-8 N
        (units.AU_FORCE, 8.2387234983e-8 / (E / 1e-10), 1e-10),
        # atomic unit of time, 2.4188843265857e-17 s
        (units.AU_TIME, 2.4188843265857e-17 * 1e15, 1e-12),
        # Coulomb constant 8.9875517923e9 N m^2 C^-2 -> eV Å / e^2
        (units.COULOMB_CONSTANT, 8.9875517923e9 * E * 1e10, 1e-10),
        # Debye = 1e-21/c C m = 3.33564095198e-30 C m
        (units.DEBYE, 3.33564095198e-30 / (E * 1e-10), 1e-10),
        # kcal/mol via the Faraday constant 96485.33212 C/mol
        (units.KCAL_PER_MOL, 4184.0 / 96485.33212, 1e-10),
        # 1 µC/cm² = 1e-2 C/m² ; 1 e/Å² = 16.02176634 C/m²
        (units.UC_PER_CM2, 1e-2 / 16.02176634, 1e-12),
        # 1 GPa in eV/Å³ (1 eV/Å³ = 160.2176634 GPa, exact since e is)
        (units.GPA, 1 / 160.2176634, 1e-12),
    ],
)
def test_constants_match_codata_2018(value, codata, rel):
    assert value == pytest.approx(codata, rel=rel)


def test_design_doc_numbers():
    # DESIGN.md: k_e = 14.399645 eV Å / e^2, 1 e·Å = 4.8032 D, 1 V/Å = 100 MV/cm.
    assert units.COULOMB_CONSTANT == pytest.approx(14.399645, abs=5e-7)
    assert 1 / units.DEBYE == pytest.approx(4.8032, abs=5e-5)
    assert units.convert(1.0, "V/angstrom", "MV/cm") == pytest.approx(100.0)
    assert units.convert(1.0, "V/angstrom", "GV/m") == pytest.approx(10.0)


def test_volume_polarizability_relation():
    # alpha[Å^3] = k_e * alpha[e Å^2/V]; in atomic units 4 pi eps0 = 1, so bohr^3 == au.
    alpha = 0.1
    assert units.from_internal(alpha, "angstrom^3", "polarizability") == pytest.approx(
        units.COULOMB_CONSTANT * alpha
    )
    assert units.to_internal(1.0, "bohr^3", "polarizability") == pytest.approx(
        units.to_internal(1.0, "au", "polarizability"), rel=1e-12
    )


@pytest.mark.parametrize(
    ("unit", "dimension"),
    [("hartree", "energy"), ("kcal/mol", "energy"), ("bohr", "length"), ("e*bohr", "dipole"),
     ("Debye", "dipole"), ("bohr^3", "polarizability"), ("e*angstrom^2/V", "polarizability"),
     ("MV/cm", "field"), ("kV/cm", "field"), ("hartree/bohr", "force"), ("uC/cm^2", "polarization"),
     ("GPa", "stress"), ("e*Å", "dipole"), ("Å^3", "polarizability")],
)
def test_round_trip(unit, dimension):
    values = np.array([1.0, -2.5, 3e-3])
    back = units.from_internal(units.to_internal(values, unit, dimension), unit, dimension)
    np.testing.assert_allclose(back, values, rtol=1e-14)


def test_wrong_dimension_and_unknown_unit_are_one_clear_error():
    with pytest.raises(UnitError, match="not a unit of dipole.*unit of energy"):
        units.parse_unit("hartree", "dipole")
    with pytest.raises(UnitError, match="unknown unit 'furlong'"):
        units.parse_unit("furlong")
    with pytest.raises(UnitError, match="ambiguous"):
        units.parse_unit("au")
    with pytest.raises(UnitError, match="not a unit of energy"):
        units.convert(1.0, "eV", "bohr")
