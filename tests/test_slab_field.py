"""The slab-in-a-capacitor relations of reference/slab_field.py, without DFT: the applied
strength is aimed at the field asked, the enthalpy's field derivative is -mu, and the
electron count above a plane is the density's integral."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import fcc100

from fieldforce.errors import BackendError
from fieldforce.reference.slab_field import FieldRun, SlabCapacitor, aim_field, electrons_above


def slab():
    atoms = fcc100("Cu", size=(2, 2, 3), vacuum=6.0)
    atoms.pbc = (True, True, False)
    return atoms


def fake_run(capacitor, mu0=0.3, response=0.8):
    """A metal-like slab: its dipole grows linearly with the field it feels,
    mu = mu0 + response * F, with F = S + mu / (eps0 A L) solved exactly; the box
    energy obeys Hellmann-Feynman for the applied potential, dE_box/dS = -mu(S)
    (mu(S) = a + b S, so E_box = -(a S + b S² / 2))."""
    cl = capacitor.capacitance * capacitor.length
    b = response * cl / (cl - response)
    a = mu0 * cl / (cl - response)

    def run(strength: float) -> FieldRun:
        felt = (strength + mu0 / cl) / (1 - response / cl)
        mu = mu0 + response * felt
        assert mu == pytest.approx(a + b * strength)
        energy = -(a * strength + 0.5 * b * strength**2)
        return FieldRun(applied=strength * capacitor.normal, energy=energy, forces=None,
                        dipole=mu * capacitor.normal)
    return run


def test_aim_field_reaches_the_field_asked_and_gives_up_clearly():
    capacitor = SlabCapacitor.of(slab())
    assert capacitor.enhancement > 1
    run = fake_run(capacitor)
    for wanted in (-0.8, 0.0, 0.5):
        center, applied, corrections = aim_field(run, capacitor, wanted, 1e-4, 6)
        assert capacitor.felt(center) == pytest.approx(wanted, abs=1e-4)
        assert applied == pytest.approx(float(center.applied @ capacitor.normal))
        assert 1 <= corrections <= 3  # the permanent dipole moves the first guess off
    with pytest.raises(BackendError, match="after 0 corrections"):
        aim_field(run, capacitor, 0.5, 1e-4, 0)


def test_enthalpy_field_derivative_is_minus_the_dipole():
    """U = E_box - mu² / (2 eps0 A L) at the field felt: dU/dF = -mu, though the box
    energy's derivative is along the applied strength."""
    capacitor = SlabCapacitor.of(slab())
    run = fake_run(capacitor)
    h = 1e-4
    for wanted in (-0.5, 0.2):
        u = [capacitor.enthalpy(aim_field(run, capacitor, f, 1e-10, 20)[0])
             for f in (wanted + h, wanted - h)]
        mu = float(aim_field(run, capacitor, wanted, 1e-10, 20)[0].dipole
                   @ capacitor.normal)
        assert (u[0] - u[1]) / (2 * h) == pytest.approx(-mu, rel=1e-6)


def test_electrons_above_integrates_the_density():
    cell = np.diag([3.0, 4.0, 10.0])
    density = np.full((6, 8, 40), 0.5)  # electrons / Å³
    above = electrons_above(density, cell, 7.5, np.array([0.0, 0.0, 1.0]))
    # grid planes at z = 0, 0.25, ..., 9.75: 9 of 40 lie above 7.5 Å
    assert above == pytest.approx(0.5 * 3 * 4 * 10 * 9 / 40)
