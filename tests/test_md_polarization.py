"""Finite-field MD with a periodic latent-charge model: the continuous polarization, the
applied field, charges, velocities and Born charges in the trajectory, and restarts
that keep the polarization branch."""

from __future__ import annotations

import json
import shutil

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms, units

from fieldforce.analysis import polarization_current
from fieldforce.datasets import load_water
from fieldforce.electrostatics import polarization
from fieldforce.errors import ConfigError
from fieldforce.models import build_model, save_model
from fieldforce.simulation.calculator import FieldForceCalculator
from fieldforce.simulation.md import run_md
from fieldforce.units import UC_PER_CM2

# no interaction layer: the set-up below (charges above 0.05 e on the atoms that cross the
# boundary) was made for this architecture and its random initial weights
SMALL = {"family": "latent", "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.5},
         "hidden": [16], "species": [1, 8], "interactions": 0}
L = 7.0  # Å, cubic cell
FIELD = {"type": "sinusoid", "amplitude": [0.1, 0.0, 0.0], "period_fs": 20.0}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def md_dir(tmp_path_factory):
    """model.pt (small latent model, gentle energy, sizeable position-dependent charges)
    and box.xyz: a water dimer in a 7 Å cell whose second molecule moves along +x at
    0.025 Å/fs, so that its three atoms cross the plane s_x = 1/2, where the default
    branch of the polarization jumps, within 40 fs."""
    d = tmp_path_factory.mktemp("md_polarization")
    dimers = [f for f in load_water() if f.atoms.info.get("config_type") == "dimer"][:6]
    torch.manual_seed(0)
    model = build_model(SMALL)
    model.fit_statistics(dimers)
    with torch.no_grad():
        model.backbone.energy_scale.mul_(0.1)
        model.charge_unit.fill_(0.5)
    save_model(model, d / "model.pt")
    dimer = dimers[0].atoms
    atoms = Atoms(dimer.numbers, positions=dimer.positions + [2.06, 3.5, 3.5],
                  cell=np.eye(3) * L, pbc=True)
    velocities = np.zeros((6, 3))
    velocities[3:, 0] = 0.025 / units.fs
    atoms.set_velocities(velocities)
    ase.io.write(d / "box.xyz", atoms, format="extxyz")
    return d


def config(output, **kw) -> dict:
    return {"structure": "box.xyz", "model": "model.pt", "output": output, "ensemble": "nve",
            "timestep_fs": 0.5, "write_interval": 2, "field": FIELD, **kw}


def series(path):
    frames = ase.io.read(path, ":")
    p = np.array([f.calc.results["polarization"] for f in frames])
    q = np.array([f.calc.results["charges"] for f in frames])
    return frames, p, q


@pytest.fixture(scope="module")
def run80(md_dir):
    summary = run_md(config("run80", steps=80, write_interval=1, write_born_charges=True),
                     base_dir=md_dir, progress=False)
    return summary, *series(md_dir / "run80" / "trajectory.xyz")


def test_polarization_is_continuous_across_the_cell_boundary(run80):
    summary, frames, p, q = run80
    assert [f.info["step"] for f in frames] == list(range(81))
    volume = L**3
    s = np.array([f.positions for f in frames]) / L  # cubic cell: fractional coordinates
    default = np.array([polarization(torch.tensor(f.positions), torch.tensor(qf),
                                     torch.tensor(f.cell.array), True).numpy()
                        for f, qf in zip(frames, q, strict=True)])
    # frames k -> k+1 in which atom i crosses a plane s_a = n + 1/2, where the default
    # branch (phases in [-pi, pi)) jumps by the quantum q_i L / V
    events = np.argwhere(np.diff(np.round(s), axis=0) != 0)
    quanta = np.abs(q[events[:, 0], events[:, 1]]) * L / volume
    clear = events[quanta > 1e-3]  # e/Å²: atoms with a charge above 0.05 e
    assert any(i >= 3 and a == 0 for _, i, a in clear)  # the moving molecule, along x
    for k, i, a in clear:
        quantum = abs(q[k, i]) * L / volume
        assert abs(default[k + 1, a] - default[k, a]) > 0.5 * quantum
        assert abs(p[k + 1, a] - p[k, a]) < 0.1 * quantum  # the recorded P does not jump
    # and it is the polarization of the unwrapped atoms on the first frame's branch
    branch = s - np.round(s[0])
    expected = np.einsum("ti,tia->ta", q, branch) * L / volume
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-9)
    dipoles = np.array([f.calc.results["dipole"] for f in frames])
    np.testing.assert_allclose(dipoles, p * volume, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(summary["mean_polarization_e_per_A2"], p[1:].mean(axis=0),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(summary["mean_polarization_uC_per_cm2"],
                               np.array(summary["mean_polarization_e_per_A2"]) / UC_PER_CM2)


def test_trajectory_records_field_velocities_born_charges(run80, md_dir):
    _, frames, p, q = run80
    for f in frames:
        t = f.info["time_fs"]
        np.testing.assert_allclose(f.info["efield"], [0.1 * np.sin(2 * np.pi * t / 20), 0, 0],
                                   atol=1e-12)
        assert f.get_momenta().shape == (6, 3) and f.arrays["born_charges"].shape == (6, 9)
    assert np.abs(frames[-1].get_velocities()[3:, 0]).min() > 0  # velocities are kept
    # the Born charges of a frame are the calculator's, row-major, with the sum rule
    frame = frames[7]
    calc = FieldForceCalculator(md_dir / "model.pt")
    atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
    atoms.calc = calc
    born = frame.arrays["born_charges"].reshape(6, 3, 3)
    np.testing.assert_allclose(born, calc.get_born_charges(atoms), atol=1e-7)
    np.testing.assert_allclose(born.sum(axis=0), 0.0, atol=1e-6)
    # the polarization current from the file: velocities in Å/fs, Z* row-major
    z = np.array([f.arrays["born_charges"].reshape(6, 3, 3) for f in frames])
    v = np.array([f.get_velocities() * units.fs for f in frames])
    np.testing.assert_allclose(v[0, 3:, 0], 0.025)
    current = polarization_current(z, v)
    np.testing.assert_allclose(current[7], np.einsum("iab,ib->a", born, v[7]))
    assert np.abs(current).max() > 1e-4
    # the log: P in e/Å² and µC/cm², the same numbers as the trajectory
    log = np.loadtxt(md_dir / "run80" / "md.log")
    assert log.shape == (81, 17)
    np.testing.assert_allclose(log[:, 11:14], p, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(log[:, 14:17], p / UC_PER_CM2, atol=2e-6)
    np.testing.assert_allclose(log[:, 8], [f.info["efield"][0] for f in frames], atol=1e-6)


def test_analyze_ir_current_of_the_trajectory(run80, md_dir, capsys):
    from fieldforce.analysis import polarization_current_spectrum
    from fieldforce.cli.main import main

    _, frames, _, _ = run80
    out = md_dir / "ir.json"
    assert main(["analyze", "ir", str(md_dir / "run80" / "trajectory.xyz"), "--current",
                 "--json", str(out)]) == 0
    assert "polarization current" in capsys.readouterr().out
    z = np.array([f.arrays["born_charges"].reshape(6, 3, 3) for f in frames])
    v = np.array([f.get_velocities() * units.fs for f in frames])
    expected = polarization_current_spectrum(z, v, 0.5)
    np.testing.assert_allclose(json.loads(out.read_text())["intensity"], expected.intensity,
                               atol=1e-12)


def test_restart_keeps_the_polarization_branch(md_dir, run80, recwarn):
    _, frames, p, _ = run80
    run_md(config("restart", steps=30, write_interval=1), base_dir=md_dir, progress=False)
    summary = run_md(config("restart", steps=80, write_interval=1), base_dir=md_dir,
                     resume=True, progress=False)
    assert summary["steps_done"] == 50 and summary["mean_polarization_e_per_A2"] is not None
    again, p_again, _ = series(md_dir / "restart" / "trajectory.xyz")
    assert [f.info["step"] for f in again] == list(range(81))
    assert not [w for w in recwarn if "polarization" in str(w.message)]
    # an atom crosses s = 1/2 after the restart; P(t) is the same as without one (NVE,
    # the file's 1e-8 Å precision is the only difference)
    s = np.array([f.positions for f in again]) / L
    assert (np.argwhere(np.diff(np.round(s), axis=0) != 0)[:, 0] >= 30).any()
    np.testing.assert_allclose(p_again, p, rtol=0, atol=1e-8)
    assert "born_charges" not in again[-1].arrays  # not requested this time


def test_restart_from_wrapped_positions_warns(md_dir):
    out = md_dir / "wrapped"
    run_md(config("wrapped", steps=4), base_dir=md_dir, progress=False)
    frames = ase.io.read(out / "trajectory.xyz", ":")
    frames[-1].positions[3] += [L, 0.0, 0.0]  # the same crystal, another branch
    shutil.move(out / "trajectory.xyz", out / "old.xyz")
    ase.io.write(out / "trajectory.xyz", frames, format="extxyz")
    with pytest.warns(UserWarning, match=r"last frame, key 'polarization'.*wrapped"):
        run_md(config("wrapped", steps=6), base_dir=md_dir, resume=True, progress=False)


def test_born_charges_need_a_charge_model(md_dir, tmp_path):
    response = build_model({"species": [1, 8]})
    save_model(response, md_dir / "response.pt")
    with pytest.raises(ConfigError, match="'write_born_charges'.*predicts no charges"):
        run_md(config("x", steps=1, model="response.pt", write_born_charges=True),
               base_dir=md_dir, progress=False)
    with pytest.raises(ConfigError, match="'write_born_charges': expected true or false"):
        run_md(config("x", steps=1, write_born_charges="yes"), base_dir=md_dir)
    assert not (md_dir / "x").exists()
    summary = json.loads((md_dir / "run80" / "summary.json").read_text())
    assert summary["write_born_charges"] is True


def test_isolated_latent_model_records_the_dipole(md_dir):
    """A molecule has a dipole, no polarization: the log keeps its 11 columns."""
    box = ase.io.read(md_dir / "box.xyz")
    molecule = Atoms(box.numbers, box.positions, pbc=False)
    molecule.set_momenta(box.get_momenta())
    ase.io.write(md_dir / "molecule.xyz", molecule, format="extxyz")
    summary = run_md(config("isolated", structure="molecule.xyz", steps=4, write_interval=2,
                            write_born_charges=True), base_dir=md_dir, progress=False)
    assert summary["mean_polarization_e_per_A2"] is None
    frames = ase.io.read(md_dir / "isolated" / "trajectory.xyz", ":")
    for f in frames:
        assert "polarization" not in f.calc.results
        q = f.calc.results["charges"]
        np.testing.assert_allclose(f.calc.results["dipole"], q @ f.positions, atol=1e-6)
        born = f.arrays["born_charges"].reshape(6, 3, 3)
        np.testing.assert_allclose(born.sum(axis=0), 0.0, atol=1e-6)  # exact for molecules
    assert np.loadtxt(md_dir / "isolated" / "md.log").shape == (3, 11)
