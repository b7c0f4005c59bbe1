"""The ASE calculator and the MD driver: forces, field terms, stress, conservation, restart."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from fieldforce.cli.main import main as cli_main
from fieldforce.data.batch import batch_from_atoms
from fieldforce.errors import ConfigError, DataError
from fieldforce.fields import PointChargeField, SinusoidalField
from fieldforce.models import build_model, evaluate, load_model, save_model
from fieldforce.simulation.calculator import FieldForceCalculator, StressUnavailableError
from fieldforce.simulation.md import run_md

H = 1e-4  # Å, step of the central differences of the forces
STRAIN = 1e-5  # strain step: at 1e-4 the O(h^2) error of the stress is ~5e-6 relative


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def model(water):
    torch.manual_seed(0)
    m = build_model({"species": [1, 8]})
    m.fit_statistics(water[:100])
    return m


@pytest.fixture(scope="module")
def dimer(water) -> Atoms:
    atoms = next(f.atoms for f in water if f.atoms.info.get("config_type") == "dimer").copy()
    atoms.info = {}
    return atoms


@pytest.fixture(scope="module")
def md_dir(tmp_path_factory, model, dimer):
    """A directory with model.pt and dimer.xyz, the md configs' base_dir.

    The saved model has its energy head scaled by 0.1: the untrained energy has no
    short-range repulsion, and at full scale the dimer collapses (H-O below 0.4 Å, several
    eV of kinetic energy) within 50 fs, which tests the collapse, not the integrator.
    """
    d = tmp_path_factory.mktemp("md")
    gentle = load_model(save_model(model, d / "full.pt"))
    gentle.backbone.energy_scale.mul_(0.1)
    save_model(gentle, d / "model.pt")
    ase.io.write(d / "dimer.xyz", dimer, format="extxyz")
    return d


def energy_and_forces(atoms: Atoms, calc: FieldForceCalculator) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


def finite_difference_forces(atoms: Atoms, calc: FieldForceCalculator) -> np.ndarray:
    fd = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, a] += sign * H
                energies.append(energy_and_forces(moved, calc)[0])
            fd[i, a] = -(energies[0] - energies[1]) / (2 * H)
    return fd


@pytest.mark.parametrize("field", ["none", "uniform", "point_charge"])
def test_forces_are_minus_energy_gradient(model, dimer, field):
    center = dimer.positions.mean(0)
    efield = {"none": None, "uniform": [0.02, -0.05, 0.1],
              "point_charge": PointChargeField(0.5, center + [4.0, 1.0, -1.0])}[field]
    calc = FieldForceCalculator(model, efield=efield)
    _, forces = energy_and_forces(dimer, calc)
    fd = finite_difference_forces(dimer, calc)
    scale = np.abs(forces).max()
    assert np.abs(fd - forces).max() < 1e-6 * scale
    if field != "none":  # the field terms are large compared to the tolerance
        _, zero_field = energy_and_forces(dimer, FieldForceCalculator(model))
        assert np.abs(forces - zero_field).max() > 1e-3 * scale
    if field == "point_charge":
        energy_and_forces(dimer, calc)  # results of the undisplaced dimer again
        e_atoms = efield(torch.as_tensor(dimer.positions), 0.0).numpy()
        assert calc.results["efield"].shape == (len(dimer), 3)
        np.testing.assert_allclose(calc.results["efield"], e_atoms)
        assert np.ptp(e_atoms, axis=0).max() > 0.01  # really non-uniform


def test_response_matches_model_and_enthalpy_identity(model, dimer):
    field = np.array([0.03, 0.07, -0.1])
    calc = FieldForceCalculator(model, efield=field, per_atom=True)
    atoms = dimer.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    reference = evaluate(model, batch_from_atoms(dimer), field=torch.as_tensor(field))
    np.testing.assert_allclose(atoms.get_dipole_moment(), reference["dipole"][0].detach(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(calc.get_polarizability(), reference["polarizability"][0].detach(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(calc.results["atomic_dipoles"],
                               reference["atomic_dipoles"].detach(), rtol=0, atol=1e-12)
    assert calc.results["atomic_polarizabilities"].shape == (len(dimer), 3, 3)
    np.testing.assert_allclose(atoms.get_forces(), reference["forces"], rtol=0, atol=1e-10)
    assert energy == calc.get_property("free_energy")
    np.testing.assert_array_equal(calc.results["efield"], field)

    zero = dimer.copy()
    zero.calc = FieldForceCalculator(model)
    u0, mu = zero.get_potential_energy(), zero.get_dipole_moment()
    alpha = zero.calc.get_polarizability()
    assert np.abs(mu).max() > 1e-3 and np.abs(alpha).max() > 1e-3
    expected = u0 - mu @ field - 0.5 * field @ alpha @ field
    assert abs(energy - expected) < 1e-9
    assert abs(energy - u0) > 1e-4  # the identity is not trivially met


def water_box(water) -> Atoms:
    monomers = [f.atoms for f in water if f.atoms.info.get("config_type") == "monomer"][:4]
    box = Atoms(cell=np.eye(3) * 6.0, pbc=True)
    for k, (monomer, site) in enumerate(zip(monomers, [(1.5, 1.5, 1.5), (4.5, 4.5, 1.5),
                                                       (4.5, 1.5, 4.5), (1.5, 4.5, 4.5)],
                                            strict=True)):
        molecule = monomer.copy()
        molecule.rotate(70 * k, "xyz"[k % 3], center="COM")
        molecule.translate(np.array(site) - molecule.get_center_of_mass())
        box += molecule
    return box


def test_stress_is_strain_derivative(model, water):
    box = water_box(water)
    calc = FieldForceCalculator(model)
    atoms = box.copy()
    atoms.calc = calc
    stress = atoms.get_stress(voigt=False)
    volume = atoms.get_volume()
    fd = np.zeros((3, 3))
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)  # symmetric: dE = V sigma_ab h either way
            strain[a, b] += sign * STRAIN / (1 if a == b else 2)
            if a != b:
                strain[b, a] += sign * STRAIN / 2
            strained = box.copy()
            strained.set_cell(box.cell.array @ strain, scale_atoms=True)
            strained.calc = calc
            energies.append(strained.get_potential_energy())
        fd[a, b] = fd[b, a] = (energies[0] - energies[1]) / (2 * STRAIN) / volume
    assert np.abs(stress).max() > 1e-4
    assert np.abs(fd - stress).max() < 1e-6 * np.abs(stress).max() + 1e-9


def test_stress_of_a_molecule_is_a_clear_error(model, dimer):
    atoms = dimer.copy()
    atoms.calc = FieldForceCalculator(model)
    with pytest.raises(StressUnavailableError, match="periodic in all three directions"):
        atoms.get_stress()
    assert np.isfinite(atoms.get_potential_energy())  # energy and forces still work


def test_time_dependent_field(model, dimer):
    field = SinusoidalField([0.0, 0.0, 0.2], period_fs=20.0)
    calc = FieldForceCalculator(model, efield=field)
    atoms = dimer.copy()
    atoms.calc = calc
    e0, f0 = atoms.get_potential_energy(), atoms.get_forces()  # t = 0: E = 0
    calc.time_fs = 5.0  # quarter period: E = (0, 0, 0.2)
    e1, f1 = atoms.get_potential_energy(), atoms.get_forces()
    np.testing.assert_allclose(calc.results["efield"], [0.0, 0.0, 0.2], atol=1e-12)
    assert abs(e1 - e0) > 1e-4 and np.abs(f1 - f0).max() > 1e-4
    static = FieldForceCalculator(model, efield=[0.0, 0.0, 0.2])
    assert abs(e1 - energy_and_forces(dimer, static)[0]) < 1e-10


def md_config(md_dir, output, **kw) -> dict:
    return {"structure": "dimer.xyz", "model": "model.pt", "output": output, **kw}


def test_nve_conserves_energy_in_static_field(md_dir):
    summary = run_md(md_config(md_dir, "nve", ensemble="nve", temperature_K=300,
                               timestep_fs=0.25, steps=200, write_interval=1,
                               field={"type": "static", "vector": [0, 0, 0.05]}),
                     base_dir=md_dir, progress=False)
    assert summary["steps_done"] == 200 and summary["energy_conserved"]
    log = np.loadtxt(md_dir / "nve" / "md.log")
    assert log.shape == (201, 11)
    time_fs, epot, ekin, etot = log[:, 0], log[:, 1], log[:, 2], log[:, 3]
    np.testing.assert_allclose(time_fs, np.arange(201) * 0.25)
    np.testing.assert_allclose(log[:, 8:], np.tile([0, 0, 0.05], (201, 1)))
    np.testing.assert_allclose(etot, epot + ekin, atol=3e-6)  # 6-decimal table
    # the dimer really moves: the potential energy it exchanges is >1000x the table's 1e-6
    # eV resolution (an untrained model on globally scaled invariants is gentle: ~4 meV)
    assert epot.std() > 1e-3 and ekin.max() > 0.02
    drift = np.polyfit(time_fs, etot, 1)[0] * (time_fs[-1] - time_fs[0])  # eV over the run
    assert abs(drift) < 0.05 * epot.std()
    assert etot.std() < 0.01 * epot.std()
    expected_drift = np.polyfit(time_fs, etot, 1)[0] * 1000 / 6
    assert summary["energy_drift_eV_per_atom_per_ps"] == pytest.approx(expected_drift,
                                                                       abs=1e-3)


def test_md_evaluates_time_dependent_field_at_frame_time(md_dir, monkeypatch):
    field = {"type": "sinusoid", "amplitude": [0.0, 0.1, 0.0], "period_fs": 4.0}
    calls = []
    calculate = FieldForceCalculator.calculate

    def counted(self, *args, **kwargs):
        calls.append(self.time_fs)
        return calculate(self, *args, **kwargs)

    monkeypatch.setattr(FieldForceCalculator, "calculate", counted)
    run_md(md_config(md_dir, "sine", ensemble="langevin", temperature_K=300, timestep_fs=0.5,
                     steps=6, write_interval=1, field=field), base_dir=md_dir, progress=False)
    # one model evaluation per step, each at the time of the positions it sees: the
    # integrator's start-of-step forces come from the cache (advance_time keeps them)
    assert calls == [0.5 * k for k in range(7)]
    monkeypatch.undo()
    frames = ase.io.read(md_dir / "sine" / "trajectory.xyz", ":")
    assert [f.info["step"] for f in frames] == list(range(7))
    calc = FieldForceCalculator(md_dir / "model.pt", efield=field)
    for frame in frames[1:]:
        t = frame.info["time_fs"]
        np.testing.assert_allclose(frame.info["efield"], [0, 0.1 * np.sin(2 * np.pi * t / 4), 0],
                                   atol=1e-12)
        calc.time_fs = t
        atoms = Atoms(frame.numbers, frame.positions)
        atoms.calc = calc
        # the recorded energy is that of the frame's positions at the frame's time
        assert abs(atoms.get_potential_energy() - frame.get_potential_energy()) < 1e-5
    assert len({round(float(f.get_potential_energy()), 4) for f in frames}) == len(frames)


def test_a_failure_during_the_dynamics_names_the_step(md_dir, monkeypatch):
    calculate = FieldForceCalculator.calculate
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # step 3: as if two atoms had collided
            raise DataError("atoms 0 and 1 overlap (closer than 0.1 Å).")
        return calculate(self, *args, **kwargs)

    monkeypatch.setattr(FieldForceCalculator, "calculate", failing)
    with pytest.raises(DataError, match=r"trajectory.xyz: MD step 3 \(t = 1.5 fs\): atoms 0 "
                                        r"and 1 overlap.*training data.*timestep"):
        run_md(md_config(md_dir, "fails", ensemble="nve", timestep_fs=0.5, steps=6,
                         write_interval=1), base_dir=md_dir, progress=False)
    monkeypatch.undo()
    frames = ase.io.read(md_dir / "fails" / "trajectory.xyz", ":")
    assert [f.info["step"] for f in frames] == [0, 1, 2]


def test_restart_continues_trajectory(md_dir):
    config = md_config(md_dir, "restart", ensemble="langevin", temperature_K=300,
                       timestep_fs=0.5, steps=20, write_interval=5,
                       field={"type": "static", "vector": [0, 0, 0.05]})
    first = run_md(config, base_dir=md_dir, progress=False)
    assert first["step"] == 20 and first["steps_done"] == 20
    out = md_dir / "restart"
    last = ase.io.read(out / "trajectory.xyz", -1)
    with pytest.raises(ConfigError, match="--resume"):
        run_md(config, base_dir=md_dir, progress=False)
    second = run_md({**config, "steps": 40}, base_dir=md_dir, resume=True, progress=False)
    assert second["steps_done"] == 20 and second["step"] == 40
    frames = ase.io.read(out / "trajectory.xyz", ":")
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    np.testing.assert_allclose([f.info["time_fs"] for f in frames], np.arange(0, 20.5, 2.5))
    # the resumed run started from the stored frame: momenta were present and used
    assert np.abs(last.get_momenta()).max() > 0
    assert np.abs(frames[5].positions - last.positions).max() < 0.2
    log = np.loadtxt(out / "md.log")
    np.testing.assert_allclose(log[:, 0], np.arange(0, 20.5, 2.5))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 40 and summary["mean_temperature_K"] > 0


def test_bad_configs(md_dir):
    with pytest.raises(ConfigError, match="'thermostat'"):
        run_md(md_config(md_dir, "x", ensemble="nve", steps=1, thermostat="nh"),
               base_dir=md_dir)
    with pytest.raises(DataError, match="nowhere.xyz.*'structure'"):
        run_md({**md_config(md_dir, "x", ensemble="nve", steps=1),
                "structure": "nowhere.xyz"}, base_dir=md_dir)
    with pytest.raises(ConfigError, match="'steps'"):
        run_md({"structure": "dimer.xyz", "model": "model.pt", "output": "x",
                "ensemble": "nve"}, base_dir=md_dir)
    with pytest.raises(ConfigError, match="'ensemble'.*nose-hoover"):
        run_md(md_config(md_dir, "x", ensemble="npt", steps=1), base_dir=md_dir)
    with pytest.raises(ConfigError, match="'temperature_K'"):
        run_md(md_config(md_dir, "x", ensemble="langevin", steps=1), base_dir=md_dir)
    assert not (md_dir / "x").exists()


def test_cli_md(md_dir, capsys):
    good = md_dir / "cli.yaml"
    good.write_text("structure: dimer.xyz\nmodel: model.pt\noutput: cli_out\nensemble: "
                    "nose-hoover\ntemperature_K: 200\nsteps: 4\nwrite_interval: 2\n")
    assert cli_main(["md", str(good), "--no-progress"]) == 0
    assert "4 steps done" in capsys.readouterr().out
    assert len(ase.io.read(md_dir / "cli_out" / "trajectory.xyz", ":")) == 3
    assert cli_main(["md", str(good), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err and "Traceback" not in err
    assert cli_main(["md", str(good), "--no-progress", "--resume"]) == 0  # nothing left to do
    assert "0 steps done" in capsys.readouterr().out

    bad = md_dir / "bad.yaml"
    bad.write_text("structure: dimer.xyz\nmodel: model.pt\noutput: bad_out\nensemble: nve\n"
                   "steps: 2\ntimestep: 0.5\n")
    assert cli_main(["md", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'timestep'" in err and err.startswith("fieldforce md")
