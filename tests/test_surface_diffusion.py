"""Adatom diffusion analysis against random walks with a known hop rate: hop counts,
D = Gamma a²/4 (hops and MSD), unwrapping across the cell, Arrhenius fits."""

import json
import re

import numpy as np
import pytest

from fieldforce.analysis.diffusion import (
    KB_EV,
    arrhenius,
    count_hops,
    diffusion_run,
    field_shifts,
    hollow_sites,
    mean_structure,
    surface_lattice,
    unwrap_lateral,
)
from fieldforce.datasets import metal_slabs as slabs
from fieldforce.errors import ConfigError


def _walk(system, rate_per_ps, n_frames, dt_fs, rng, field=0.0, rate_from_hcp=None):
    """Frames of an adatom hopping between the hollows at ``rate_per_ps`` (each
    direction out of a site equally likely: +-a1, +-a2 on (100); on (111) from an fcc
    hollow to one of its three hcp neighbours and back, the path from fcc to hcp rotated
    by 0 and +-120 degrees; a hop takes four frames), with 0.08 Å jitter, its positions
    wrapped into the cell like an MD trajectory's; the true hop count and hop length².
    ``rate_from_hcp``: another rate out of the (111) hcp hollows."""
    path = slabs.hop_path(system)
    base = path[0]
    normal, lattice = surface_lattice(base, -1)
    if system == "Cu(111)":
        first = path[-1].positions[-1] - base.positions[-1]
        first -= (first @ normal) * normal
        turn = [np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)]
        e2 = np.cross(normal, first)
        out = [first, turn[0] * first + turn[1] * e2, turn[0] * first - turn[1] * e2]
        directions = [np.array(out), -np.array(out)]  # from fcc, from hcp
    else:
        four = np.array([lattice[0], -lattice[0], lattice[1], -lattice[1]])
        directions = [four, four]
    position = base.positions[-1].copy()
    frames, hops, transit, kind = [], 0, [], 0
    rates = [rate_per_ps, rate_per_ps if rate_from_hcp is None else rate_from_hcp]
    for k in range(n_frames):
        if not transit and k and rng.random() < rates[kind] * dt_fs / 1000:
            step = directions[kind][rng.integers(len(directions[kind]))]
            transit = [position + step * s for s in (0.25, 0.5, 0.75, 1.0)]
            hops += 1
            kind = 1 - kind if system == "Cu(111)" else 0
        if transit:
            position = transit.pop(0)
        atoms = base.copy()
        atoms.positions[-1] = position + rng.normal(0, 0.08, 3) * [1, 1, 0.3]
        atoms.wrap()
        atoms.info["efield"] = np.array([0, 0, field])
        frames.append(atoms)
    step2 = float(directions[0][0] @ directions[0][0])
    return frames, np.arange(n_frames) * dt_fs, hops, step2


@pytest.mark.parametrize("system", ["Cu(100)", "Cu(111)"])
def test_hops_and_diffusion_of_a_known_random_walk(system):
    rng = np.random.default_rng(1)
    rate = 2.0  # hops per ps
    frames, times, hops, a2 = _walk(system, rate, 12000, 5.0, rng)
    run = diffusion_run(frames, times, temperature=600)
    assert run.hops == hops and hops > 80
    # (111): the sites are the ideal layer's hollows, the walk's hcp the relaxed one's
    assert run.hop_length2 == pytest.approx(a2, rel=1e-6 if system == "Cu(100)" else 0.02)
    expected = rate * a2 / 4  # Å²/ps
    assert run.d_hops == pytest.approx(hops * run.hop_length2 / 4 / (times[-1] / 1000),
                                       rel=1e-9)
    assert run.d_hops == pytest.approx(expected, rel=3 / np.sqrt(hops))
    # one walk of ~120 hops: the MSD slope scatters by ~20 % (12 walks measured)
    assert run.d_msd == pytest.approx(expected, rel=0.6)


@pytest.mark.parametrize("system, n_sites, to_bridge",
                         [("Cu(100)", 1, 0.5), ("Cu(111)", 2, 0.5 / np.sqrt(3))])
def test_hollow_sites_and_their_bridges(system, n_sites, to_bridge):
    path = slabs.hop_path(system)
    start = path[0]
    normal, lattice = surface_lattice(start, -1)
    spacing = np.linalg.norm(lattice[0])
    sites, distance = hollow_sites(start, -1, normal, lattice)
    assert len(sites) == n_sites
    assert distance / spacing == pytest.approx(to_bridge, abs=0.01)
    shifts = np.array([[i, j] for i in range(-3, 4) for j in range(-3, 4)]) @ lattice

    def nearest_site(position):
        lateral = position - (position @ normal) * normal
        return min(np.linalg.norm(q + shifts - lateral, axis=1).min() for q in sites)

    # the relaxed ends of the hop (fcc, then hcp on (111)) sit on sites (the final one of
    # the start's layer: its own relaxation moved the layer around it by a few 0.01 Å)
    assert nearest_site(start.positions[-1]) < 0.03
    assert nearest_site(path[-1].positions[-1]) < 0.06
    # thermal frames of the layer average to the same sites and lattice
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(100):
        atoms = start.copy()
        atoms.positions[:-1] += rng.normal(0, 0.1, (len(atoms) - 1, 3))
        atoms.wrap()
        frames.append(atoms)
    ideal = mean_structure(frames)
    averaged = surface_lattice(ideal, -1)[1]  # the same lattice (maybe another basis)
    assert np.linalg.norm(averaged, axis=1) == pytest.approx(spacing, abs=0.02)
    assert np.linalg.norm(np.cross(*averaged)) == pytest.approx(
        np.linalg.norm(np.cross(*lattice)), rel=0.01)
    jittered, _ = hollow_sites(ideal, -1, normal, lattice)
    assert len(jittered) == n_sites
    assert max(nearest_site(q) for q in jittered) < 0.06


def test_hcp_excursions_to_the_bridge_are_not_hops_on_111():
    """fcc A -> hcp H, then vibrations from H towards the bridges to A and to B, then on
    to B: two hops of a / sqrt(3). The old counting (fcc sites only, a radius of 0.35
    spacings, which reaches the bridges 0.29 spacings from a site) counted every
    excursion."""
    path = slabs.hop_path("Cu(111)")
    base, hcp = path[0], path[-1].positions[-1]
    normal, lattice = surface_lattice(base, -1)
    fcc_a = base.positions[-1]
    sites = [fcc_a + i * lattice[0] + j * lattice[1] for i in (-1, 0, 1) for j in (-1, 0, 1)]
    fcc_b = next(p for p in sites if np.linalg.norm(p - fcc_a) > 1
                 and abs(np.linalg.norm(p - hcp) - np.linalg.norm(fcc_a - hcp)) < 0.05)
    rng = np.random.default_rng(0)
    stops = [fcc_a, hcp]
    for _ in range(5):
        stops += [0.5 * (hcp + fcc_b), hcp, 0.5 * (hcp + fcc_a), hcp]
    stops += [fcc_b]
    positions = []
    for p, q in zip(stops[:-1], stops[1:], strict=True):
        positions += [p + (q - p) * t for t in np.linspace(0, 1, 6)[:-1]] + [q] * 4
    frames = []
    for p in positions:
        atoms = base.copy()
        atoms.positions[-1] = p + rng.normal(0, 0.03, 3)
        atoms.wrap()
        frames.append(atoms)
    times = np.arange(len(frames)) * 50.0
    run = diffusion_run(frames, times, temperature=150)
    spacing = np.linalg.norm(lattice[0])
    assert run.hops == 2 and run.hop_length2 == pytest.approx(spacing**2 / 3, rel=0.02)
    # one hop out of an fcc hollow (kind 0: no second-layer atom below), one out of hcp
    assert run.escapes == (1, 1)
    assert sum(run.residence_fs) == pytest.approx(run.duration_fs)
    with pytest.raises(ConfigError, match=r"reaches the bridge 0.7\d Å from the site"):
        diffusion_run(frames, times, temperature=150, capture=0.35)
    assert diffusion_run(frames, times, temperature=150, capture=0.25).hops == 2
    # what the old counting gave: each excursion from hcp to a bridge a hop
    walk = unwrap_lateral(np.array([f.positions[-1] for f in frames]), base.cell.array,
                          base.pbc)
    assert count_hops(walk, lattice, 0.35 * spacing, fcc_a[None])[0] >= 10


def test_escape_rates_out_of_fcc_and_hcp_hollows():
    rng = np.random.default_rng(4)
    rates, dt = (1.0, 4.0), 5.0  # hops/ps out of fcc (kind 0) and hcp, fs per frame
    frames, times, hops, _ = _walk("Cu(111)", rates[0], 16000, dt, rng, rate_from_hcp=rates[1])
    run = diffusion_run(frames, times, temperature=300)
    assert run.hops == hops and sum(run.escapes) == hops
    for kind, rate in enumerate(rates):
        p = rate * dt / 1000
        # a stay also holds the hop's four transit frames: 1/k = dt (1/p + 4)
        expected = p / (1 + 4 * p) / dt * 1000
        measured = run.escapes[kind] / (run.residence_fs[kind] / 1000)
        assert measured == pytest.approx(expected, rel=3 / np.sqrt(run.escapes[kind]))
    # the stays at the fast (hcp) sites are the short ones
    assert run.residence_fs[1] < 0.4 * run.residence_fs[0]


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
    # the escape rate out of the (one kind of) site: the same barrier, d0 an attempt rate
    escapes = arrhenius(runs, use="escapes")
    for fit, expected in zip(escapes, (e_a, e_a - 0.05), strict=True):
        assert fit.n == 3
        assert fit.e_a == pytest.approx(expected, abs=max(3 * fit.e_a_error, 0.02))
    with pytest.raises(ConfigError, match="use is 'hops', 'msd' or 'escapes'"):
        arrhenius(runs, use="rates")


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
    # one kind of site on (100): the escape rate is the hop rate, its shift the same
    assert got.escapes == got.hops and got.reference_escapes == got.reference_hops
    assert got.escape_shift == pytest.approx(shift, abs=3 * got.escape_shift_error)
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
    assert len(data["arrhenius_escapes"]) == 1 and data["arrhenius_escapes"][0]["e_a"] > 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert data["field_shifts"] == []  # one field: nothing to shift
    capsys.readouterr()
    single = tmp_path / "t700" / "trajectory.xyz"
    (tmp_path / "t700" / "summary.json").unlink()
    assert cli_main(["analyze", "diffusion", str(single), "--json", str(out)]) != 0
    assert "--temperature" in capsys.readouterr().err


def _field_walks(folder, fields_and_rates, n_frames, seed) -> list[str]:
    """Cu(100) walks at (field V/Å, hop rate 1/ps) pairs, 5 fs apart, written as
    trajectories with their times (F<field>.xyz in ``folder``); their paths."""
    import ase.io

    rng = np.random.default_rng(seed)
    paths = []
    for field, rate in fields_and_rates:
        frames, times, _, _ = _walk("Cu(100)", rate, n_frames, 5.0, rng, field)
        for f, time in zip(frames, times, strict=True):
            f.info["time_fs"] = time
        path = folder / f"F{field:g}.xyz"
        ase.io.write(path, frames, format="extxyz")
        paths.append(str(path))
    return paths


def test_cli_diffusion_field_shifts_next_to_the_neb(tmp_path, capsys):
    from fieldforce.cli.main import main as cli_main

    t = 500.0
    paths = _field_walks(tmp_path, ((0.0, 4.0), (1.0, 1.0)), 3000, seed=7)
    barrier = tmp_path / "barrier.json"
    barrier.write_text(json.dumps({"fields": [0.0, 1.0, -1.0], "barriers": [0.5, 0.56, None]}))
    out, plot = tmp_path / "d.json", tmp_path / "d.png"
    assert cli_main(["analyze", "diffusion", *paths, "--temperature", "500", "--barrier",
                     str(barrier), "--json", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "no Arrhenius fit" in printed and re.search(r"NEB +60\.0", printed)
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


def test_cli_diffusion_pools_runs_analysed_earlier(tmp_path, capsys):
    """A run analysed before (its trajectory since deleted) pooled through --runs gives
    the same fits and shifts as analysing both trajectories at once; a run given twice,
    or a file that is not such a JSON, is one clear error."""
    from fieldforce.cli.main import main as cli_main

    paths = _field_walks(tmp_path, ((0.0, 4.0), (-1.0, 6.0)), 2000, seed=11)
    both, first, pooled = tmp_path / "both.json", tmp_path / "first.json", tmp_path / "p.json"
    common = ["--temperature", "500"]
    assert cli_main(["analyze", "diffusion", *paths, *common, "--json", str(both)]) == 0
    assert cli_main(["analyze", "diffusion", paths[0], *common, "--json", str(first)]) == 0
    assert cli_main(["analyze", "diffusion", paths[1], *common, "--runs", str(first),
                     "--json", str(pooled)]) == 0
    together, apart = json.loads(both.read_text()), json.loads(pooled.read_text())
    (shift,) = together["field_shifts"]
    assert shift["field"] == -1.0 and shift["shift"] < 0  # the faster walk: a lower barrier
    assert apart["field_shifts"] == together["field_shifts"]
    assert sorted(apart["runs"], key=lambda r: r["field"]) == \
        sorted(together["runs"], key=lambda r: r["field"])
    assert cli_main(["analyze", "diffusion", *paths, *common, "--runs", str(first)]) == 2
    assert "would be counted twice" in capsys.readouterr().err
    first.write_text(json.dumps({"runs": [{"temperature": 500.0, "field": 0.0}]}))
    assert cli_main(["analyze", "diffusion", paths[1], *common, "--runs", str(first)]) == 2
    assert f"{first}, key 'duration_fs': run 0: expected a number, got None" in \
        capsys.readouterr().err
    run = json.loads(both.read_text())["runs"][0] | {"escapes": ["many", 3]}
    first.write_text(json.dumps({"runs": [run]}))
    assert cli_main(["analyze", "diffusion", paths[1], *common, "--runs", str(first)]) == 2
    assert "lists of numbers" in capsys.readouterr().err
    assert cli_main(["analyze", "diffusion", *common]) == 2
    assert "give trajectories" in capsys.readouterr().err
