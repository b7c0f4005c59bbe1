"""Hysteresis loops against analytic ones (phase-lagged ellipse, tanh switching), noise,
units, the plot, the ``fieldforce analyze`` command and its errors."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms

from fieldforce.analysis import hysteresis_loop
from fieldforce.cli.main import main
from fieldforce.errors import ConfigError, DataError
from fieldforce.units import MV_PER_CM, UC_PER_CM2

E0, P0, PERIOD = 0.05, 0.004, 100.0  # V/Å, e/Å², fs


def ellipse(phi, offset=0.0, cycles=3, per_cycle=1000):
    t = np.arange(cycles * per_cycle + 1) * PERIOD / per_cycle
    w = 2 * np.pi / PERIOD
    return t, E0 * np.sin(w * t), P0 * np.sin(w * t - phi) + offset


def tanh_loop(coercive=0.02, k=150.0, cycles=3, per_cycle=800, noise=0.0, seed=0):
    """P = P_s tanh(k (E - E_c sign(dE/dt))): switches at +E_c rising, -E_c falling."""
    t = np.arange(cycles * per_cycle + 1) * PERIOD / per_cycle
    w = 2 * np.pi / PERIOD
    field = E0 * np.sin(w * t)
    rising = np.sign(np.cos(w * t))
    p = P0 * np.tanh(k * (field - coercive * rising))
    p += noise * P0 * np.random.default_rng(seed).standard_normal(t.size)
    return t, field, p


@pytest.mark.parametrize("phi", [0.3, 1.0])
def test_ellipse_remanent_and_coercive_are_exact(phi):
    t, field, p = ellipse(phi, offset=0.0123)  # an arbitrary offset (branch, origin)
    loop = hysteresis_loop(field, p)
    # rising branch: E = 0 at wt = 2 pi k, P = -P0 sin(phi); falling: +P0 sin(phi)
    assert loop.remanent_up == pytest.approx(0.0123 - P0 * np.sin(phi), abs=1e-8)
    assert loop.remanent_down == pytest.approx(0.0123 + P0 * np.sin(phi), abs=1e-8)
    assert loop.remanent == pytest.approx(P0 * np.sin(phi), rel=1e-5)
    assert loop.center == pytest.approx(0.0123, abs=1e-9)
    assert loop.coercive_up == pytest.approx(E0 * np.sin(phi), rel=1e-5)
    assert loop.coercive_down == pytest.approx(-E0 * np.sin(phi), rel=1e-5)
    assert loop.coercive == pytest.approx(E0 * np.sin(phi), rel=1e-5)
    # P at the field extremes: P0 cos(phi) times the mean of cos over |E| >= 0.9 E0
    window = np.arccos(0.9)
    assert loop.saturation == pytest.approx(P0 * np.cos(phi) * np.sin(window) / window,
                                            rel=2e-3)
    assert loop.squareness == pytest.approx(np.tan(phi) * window / np.sin(window), rel=2e-3)
    # 3 cycles from E = 0 rising: rising zeros at 1 and 2 periods (t = 0 is a start, not a
    # crossing), falling at 0.5, 1.5, 2.5; P = centre at wt = phi + 2 pi k (rising) and
    # pi + phi + 2 pi k (falling), k = 0, 1, 2
    assert len(loop.remanent_up_values) == 2 and len(loop.remanent_down_values) == 3
    assert len(loop.coercive_up_values) == 3 and len(loop.coercive_down_values) == 3
    # units
    assert loop.remanent_uC_per_cm2 == pytest.approx(loop.remanent / UC_PER_CM2)
    assert loop.coercive_MV_per_cm == pytest.approx(loop.coercive / MV_PER_CM)
    assert loop.coercive_MV_per_cm == pytest.approx(5.0 * np.sin(phi), rel=1e-5)
    d = loop.to_dict()
    assert d["remanent_uC_per_cm2"] == pytest.approx(P0 * np.sin(phi) / UC_PER_CM2, rel=1e-5)
    assert "µC/cm²" in loop.table() and "MV/cm" in loop.table()


def test_interpolation_between_coarse_samples():
    """40 samples a cycle, shifted off the zeros of E: linear interpolation errs by at most
    (w dt)^2 / 8 of the amplitude (the curvature of a sine between two samples)."""
    t, field, p = ellipse(0.7, cycles=4, per_cycle=40)
    shift = 0.37 * PERIOD / 40
    w = 2 * np.pi / PERIOD
    loop = hysteresis_loop(E0 * np.sin(w * (t + shift)), P0 * np.sin(w * (t + shift) - 0.7))
    bound = (w * PERIOD / 40) ** 2 / 8
    assert abs(loop.remanent - P0 * np.sin(0.7)) < bound * P0
    assert abs(loop.coercive - E0 * np.sin(0.7)) < bound * E0
    assert abs(loop.remanent - P0 * np.sin(0.7)) > 1e-3 * bound * P0  # really coarse


def test_tanh_switching_loop_and_noise():
    ec, k = 0.02, 150.0
    _, field, p = tanh_loop(ec, k)
    loop = hysteresis_loop(field, p)
    assert loop.remanent == pytest.approx(P0 * np.tanh(k * ec), rel=1e-4)
    assert loop.coercive == pytest.approx(ec, rel=1e-3)
    assert loop.squareness > 0.95  # a switching loop
    # thermal noise of 3% of P_s: P flickers around zero near E_c; the crossings of each
    # half cycle are averaged
    t, field, p = tanh_loop(ec, k, cycles=6, noise=0.03)
    noisy = hysteresis_loop(field, p, time_fs=t, skip_fs=PERIOD)  # drop the first cycle
    assert noisy.remanent == pytest.approx(P0 * np.tanh(k * ec), rel=0.03)
    assert noisy.coercive == pytest.approx(ec, rel=0.03)
    assert len(noisy.remanent_up_values) in (4, 5) and noisy.metadata["skip_fs"] == PERIOD


def test_vector_series_projected_on_the_field_axis():
    _, field, p = ellipse(0.5)
    direction = np.array([2.0, -1.0, 2.0]) / 3.0
    perpendicular = np.array([1.0, 2.0, 0.0]) / np.sqrt(5.0)
    loop = hysteresis_loop(field[:, None] * direction,
                           p[:, None] * direction + 0.01 * perpendicular)
    np.testing.assert_allclose(loop.axis, direction, atol=1e-12)  # not -direction
    assert loop.remanent == pytest.approx(P0 * np.sin(0.5), rel=1e-5)
    along_z = hysteresis_loop(field[:, None] * direction, p[:, None] * direction, axis="z")
    assert along_z.coercive == pytest.approx(loop.coercive * 2 / 3, rel=1e-5)


def test_plot_is_written_atomically(tmp_path):
    _, field, p = tanh_loop()
    loop = hysteresis_loop(field, p)
    loop.plot(tmp_path / "loop.png")
    assert (tmp_path / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in tmp_path.iterdir()] == ["loop.png"]  # no temporary left


def test_bad_input_is_one_clear_error():
    t, field, p = ellipse(0.5)
    with pytest.raises(DataError, match="3001 samples but polarization 3000"):
        hysteresis_loop(field, p[:-1])
    with pytest.raises(DataError, match="never crosses zero on a falling branch"):
        hysteresis_loop(E0 * (2 * t / t[-1] - 1), p)  # a ramp, not an AC field
    with pytest.raises(DataError, match="never crosses the loop centre"):
        hysteresis_loop(field, np.full_like(field, 0.01))
    bad = p.copy()
    bad[17] = np.nan
    with pytest.raises(DataError, match="polarization: non-finite.*sample 17"):
        hysteresis_loop(field, bad)
    with pytest.raises(ConfigError, match="axis must be x, y, z"):
        hysteresis_loop(field[:, None] * [1, 0, 0], p[:, None] * [1, 0, 0], axis="w")
    with pytest.raises(ConfigError, match="skip_fs needs time_fs"):
        hysteresis_loop(field, p, skip_fs=10.0)


def write_trajectory(path, t, field, p, drop=None):
    """A trajectory as fieldforce md writes it: efield along x, polarization, time_fs."""
    frames = []
    for k, (tk, ek, pk) in enumerate(zip(t, field, p, strict=True)):
        atoms = Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]], cell=np.eye(3) * 5, pbc=True)
        atoms.info.update(step=k, time_fs=tk, efield=np.array([ek, 0, 0]),
                          polarization=np.array([pk, 1e-4, 0]))
        if drop is not None and k == drop[0]:
            del atoms.info[drop[1]]
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def test_cli_hysteresis(tmp_path, capsys):
    t, field, p = ellipse(0.4, offset=-0.002, cycles=3, per_cycle=100)
    traj = write_trajectory(tmp_path / "traj.xyz", t, field, p)
    out = tmp_path / "out"
    assert main(["analyze", "hysteresis", str(traj), "--skip-fs", "50", "--plot",
                 str(out / "loop.png"), "--json", str(out / "loop.json")]) == 0
    printed = capsys.readouterr().out
    assert "remanent polarization" in printed and "coercive field" in printed
    numbers = json.loads((out / "loop.json").read_text())
    assert numbers["remanent_e_per_A2"] == pytest.approx(P0 * np.sin(0.4), rel=1e-3)
    assert numbers["coercive_MV_per_cm"] == pytest.approx(5.0 * np.sin(0.4), rel=1e-3)
    assert numbers["axis"] == [1.0, 0.0, 0.0] and numbers["skip_fs"] == 50.0
    assert (out / "loop.png").stat().st_size > 1000


@pytest.mark.parametrize("args, drop, message", [
    (["hysteresis"], (7, "polarization"),
     r"traj.xyz, frame 7, key 'polarization': missing \(written by fieldforce md for "
     "periodic latent-charge models"),
    (["hysteresis", "--skip-fs", "20"], (30, "efield"), r"traj.xyz, frame 30, key 'efield'"),
    (["ir", "--current"], None, r"traj.xyz, frame 0, key 'born_charges': missing \(written "
     "by fieldforce md with write_born_charges: true"),
    (["ir"], None, r"traj.xyz, frame 0, key 'dipole': missing"),
    (["hysteresis", "--skip-fs", "1e6"], None, r"traj.xyz, key 'time_fs': no frame at or "
     "after 1e\\+06 fs"),
    (["hysteresis", "--axis", "w"], None, r"axis must be x, y, z"),
])
def test_cli_errors_name_file_frame_and_key(tmp_path, capsys, args, drop, message):
    t, field, p = ellipse(0.4, cycles=2, per_cycle=50)
    traj = write_trajectory(tmp_path / "traj.xyz", t, field, p, drop=drop)
    assert main(["analyze", args[0], str(traj), *args[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("fieldforce analyze: error:")
    assert __import__("re").search(message, err), err


def test_cli_missing_file_and_uneven_frames(tmp_path, capsys):
    assert main(["analyze", "ir", str(tmp_path / "nowhere.xyz")]) == 2
    assert "nowhere.xyz: no such trajectory file" in capsys.readouterr().err
    t, field, p = ellipse(0.4, cycles=1, per_cycle=20)
    t[11:] += 0.5  # a resumed run with another spacing
    traj = write_trajectory(tmp_path / "traj.xyz", t, field, p)
    frames = ase.io.read(traj, ":")
    for f in frames:
        f.info["dipole"] = np.array([0.1, 0.0, 0.0])
    ase.io.write(traj, frames, format="extxyz")
    assert main(["analyze", "ir", str(traj)]) == 2
    err = capsys.readouterr().err
    assert "frame 11, key 'time_fs'" in err and "equally spaced" in err
