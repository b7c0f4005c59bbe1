"""Adatom diffusion analysis against random walks with a known hop rate: hop counts,
D = Gamma a²/4 (hops and MSD), unwrapping across the cell, Arrhenius fits."""

import json

import numpy as np
import pytest

from fieldforce.analysis.diffusion import (
    KB_EV,
    arrhenius,
    diffusion_run,
    field_shifts,
    surface_lattice,
)
from fieldforce.datasets import metal_slabs as slabs


def _walk(system, rate_per_ps, n_frames, dt_fs, rng, field=0.0):
    """Frames of an adatom hopping between equivalent sites at ``rate_per_ps`` (each of
    the lattice's nearest-neighbour directions equally likely; a hop takes four frames),
    with 0.08 Å jitter, its positions wrapped into the cell like an MD trajectory's; and
    the true hop count."""
    path = slabs.hop_path(system) if system != "W(110)" else None
    base = path[0]
    normal, lattice = surface_lattice(base, -1)
    directions = np.array([lattice[0], -lattice[0], lattice[1], -lattice[1]])
    position = base.positions[-1].copy()
    frames, hops, transit = [], 0, []
    p = rate_per_ps * dt_fs / 1000
    for k in range(n_frames):
        if not transit and k and rng.random() < p:
            step = directions[rng.integers(4)]
            transit = [position + step * s for s in (0.25, 0.5, 0.75, 1.0)]
            hops += 1
        if transit:
            position = transit.pop(0)
        atoms = base.copy()
        atoms.positions[-1] = position + rng.normal(0, 0.08, 3) * [1, 1, 0.3]
        atoms.wrap()
        atoms.info["efield"] = np.array([0, 0, field])
        frames.append(atoms)
    return frames, np.arange(n_frames) * dt_fs, hops, float(lattice[0] @ lattice[0])


@pytest.mark.parametrize("system", ["Cu(100)", "Cu(111)"])
def test_hops_and_diffusion_of_a_known_random_walk(system):
    rng = np.random.default_rng(1)
    rate = 2.0  # hops per ps
    frames, times, hops, a2 = _walk(system, rate, 12000, 5.0, rng)
    run = diffusion_run(frames, times, temperature=600)
    assert run.hops == hops and hops > 80
    assert run.hop_length2 == pytest.approx(a2, rel=1e-6)
    expected = rate * a2 / 4  # Å²/ps
    assert run.d_hops == pytest.approx(hops * a2 / 4 / (times[-1] / 1000), rel=1e-9)
    assert run.d_hops == pytest.approx(expected, rel=3 / np.sqrt(hops))
    # one walk of ~120 hops: the MSD slope scatters by ~20 % (12 walks measured)
    assert run.d_msd == pytest.approx(expected, rel=0.6)


def test_arrhenius_recovers_the_activation_energy():
    rng = np.random.default_rng(2)
    e_a, nu = 0.25, 100.0  # eV, hops/ps (at most ~0.03 hops per frame)
    runs = []
    for field in (0.0, 0.5):
        for t in (600.0, 800.0, 1000.0):
            rate = nu * np.exp(-(e_a - 0.1 * field) / (KB_EV * t))
            frames, times, _, _ = _walk("Cu(100)", rate, 6000, 5.0, rng, field)
            runs.append(diffusion_run(frames, times, temperature=t))
    fits = arrhenius(runs)
    assert [f.field for f in fits] == [0.0, 0.5]
    for fit, expected in zip(fits, (e_a, e_a - 0.05), strict=True):
        assert fit.n == 3
        assert fit.e_a == pytest.approx(expected, abs=max(3 * fit.e_a_error, 0.02))


def test_field_shift_at_one_temperature_recovers_the_barrier_change():
    rng = np.random.default_rng(5)
    t, shift, rate0 = 600.0, 0.05, 3.0  # K, eV, hops/ps at the reference field
    kt = KB_EV * t
    runs = [diffusion_run(*_walk("Cu(100)", rate0, 6000, 5.0, rng, 0.0)[:2], temperature=t)
            for _ in range(2)]  # two replicas at the reference: pooled
    runs.append(diffusion_run(*_walk("Cu(100)", rate0 * np.exp(-shift / kt), 6000, 5.0, rng,
                                     0.5)[:2], temperature=t))
    runs.append(diffusion_run(*_walk("Cu(100)", 0.0, 100, 5.0, rng, -0.5)[:2],
                              temperature=t))  # no hop at -0.5: only a bound, left out
    (got,) = field_shifts(runs)
    assert (got.temperature, got.field, got.reference_field) == (t, 0.5, 0.0)
    assert got.reference_hops == runs[0].hops + runs[1].hops and got.hops == runs[2].hops
    assert got.shift_error == pytest.approx(kt * np.sqrt(1 / got.hops + 1 / got.reference_hops))
    assert got.shift == pytest.approx(shift, abs=3 * got.shift_error)
    assert got.shift_error < 0.015  # the test can tell 0.05 eV from nothing
    # the same runs from the other side: the shift changes sign
    (back,) = field_shifts(runs, reference_field=0.5)
    assert back.field == 0.0 and back.shift == pytest.approx(-got.shift)


def test_cli_diffusion_reads_runs_and_writes_the_fit(tmp_path, capsys):
    import ase.io

    from fieldforce.cli.main import main as cli_main

    rng = np.random.default_rng(3)
    paths = []
    for t in (700.0, 900.0):
        rate = 500 * np.exp(-0.2 / (KB_EV * t))
        frames, times, _, _ = _walk("Cu(100)", rate, 1500, 5.0, rng)
        run = tmp_path / f"t{int(t)}"
        run.mkdir()
        for f, time in zip(frames, times, strict=True):
            f.info["time_fs"] = time
        ase.io.write(run / "trajectory.xyz", frames, format="extxyz")
        (run / "summary.json").write_text(json.dumps({"temperature_K": t,
                                                      "ensemble": "langevin"}))
        paths.append(str(run / "trajectory.xyz"))
    out = tmp_path / "d.json"
    assert cli_main(["analyze", "diffusion", *paths, "--json", str(out), "--plot",
                     str(tmp_path / "d.png")]) == 0
    data = json.loads(out.read_text())
    assert [r["temperature"] for r in data["runs"]] == [700.0, 900.0]
    assert len(data["arrhenius"]) == 1 and data["arrhenius"][0]["e_a"] > 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert data["field_shifts"] == []  # one field: nothing to shift
    capsys.readouterr()
    single = tmp_path / "t700" / "trajectory.xyz"
    (tmp_path / "t700" / "summary.json").unlink()
    assert cli_main(["analyze", "diffusion", str(single), "--json", str(out)]) != 0
    assert "--temperature" in capsys.readouterr().err


def test_cli_diffusion_field_shifts_next_to_the_neb(tmp_path, capsys):
    import ase.io

    from fieldforce.cli.main import main as cli_main

    rng = np.random.default_rng(7)
    t = 500.0
    paths = []
    for field, rate in ((0.0, 4.0), (1.0, 1.0)):
        frames, times, _, _ = _walk("Cu(100)", rate, 3000, 5.0, rng, field)
        for f, time in zip(frames, times, strict=True):
            f.info["time_fs"] = time
        path = tmp_path / f"F{field:g}.xyz"
        ase.io.write(path, frames, format="extxyz")
        paths.append(str(path))
    barrier = tmp_path / "barrier.json"
    barrier.write_text(json.dumps({"fields": [0.0, 1.0, -1.0], "barriers": [0.5, 0.56, None]}))
    out, plot = tmp_path / "d.json", tmp_path / "d.png"
    assert cli_main(["analyze", "diffusion", *paths, "--temperature", "500", "--barrier",
                     str(barrier), "--json", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "no Arrhenius fit" in printed and "NEB     60.0" in printed
    data = json.loads(out.read_text())
    (shift,) = data["field_shifts"]
    expected = -KB_EV * t * np.log(data["runs"][1]["d_hops"] / data["runs"][0]["d_hops"])
    assert shift["field"] == 1.0 and shift["shift"] == pytest.approx(expected)
    assert data["neb"]["fields"] == [0.0, 1.0]  # the unconverged -1 left out
    assert not plot.exists() and (tmp_path / "d_shifts.png").stat().st_size > 1000
    barrier.write_text(json.dumps({"fields": [0.0]}))
    assert cli_main(["analyze", "diffusion", *paths, "--temperature", "500", "--barrier",
                     str(barrier)]) == 2
    assert f"{barrier}: expected the JSON of `fieldforce analyze barrier`" in \
        capsys.readouterr().err
