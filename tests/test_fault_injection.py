"""Fault injection: every long job is killed with SIGKILL at a random point of its work,
then resumed; the result must equal an uninterrupted run's (for MD: continuous and
complete, the same dynamics to the file's precision) and no file may be half-written.

The kill comes a random fraction of a second after the job has shown progress (a
checkpoint, a trajectory frame, a labelled frame), so it lands inside the work on any
machine speed; the seed makes the points reproducible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
import yaml

from fieldforce.data.io import read_frames, write_frames
from fieldforce.models import build_model, load_model, save_model
from learn_settings import learn_config

RUN = ("import sys\nfrom fieldforce.cli.main import main\nsys.exit(main(sys.argv[1:]))")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = {"descriptor": {"cutoff": 3.0, "max_radial": 2, "max_angular": 2}, "hidden": [8]}


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN, *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=600)


def kill_after_progress(args, progressed, rng: random.Random, timeout: float = 300,
                        delay: float = 0.4) -> bool:
    """Start the job, wait until ``progressed()``, SIGKILL it a random 0-``delay`` s later.
    True if it was killed (False: it finished first)."""
    process = subprocess.Popen([sys.executable, "-c", RUN, *map(str, args)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    while not progressed():
        if process.poll() is not None:
            return False
        if time.monotonic() - start > timeout:
            process.kill()
            raise TimeoutError(f"no progress in {timeout} s: {args}")
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, delay))
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def no_temporary_files(directory: Path) -> None:
    left = [p.name for p in directory.rglob(".*") if p.is_file()]
    assert not left, f"half-written temporary files left: {left}"


@pytest.fixture(scope="module")
def setup(water, tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    torch.manual_seed(0)
    model = build_model({"species": [1, 8], **TINY})
    model.fit_statistics(water)
    model.record_domain(water)
    model.backbone.energy_scale.mul_(0.1)
    save_model(model, d / "model.pt")
    dimer = next(f.atoms for f in water if f.atoms.info.get("config_type") == "dimer").copy()
    dimer.info = {}
    ase.io.write(d / "dimer.xyz", dimer, format="extxyz")
    small = [f for f in water if len(f.atoms) <= 6]
    write_frames(small[:40], d / "data.xyz")
    return d


def test_md_killed_and_resumed_is_continuous_and_complete(setup):
    rng = random.Random(11)
    steps, interval = 600, 10

    def config(name: str) -> Path:
        path = setup / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "structure": "dimer.xyz", "model": "model.pt", "output": name, "ensemble": "nve",
            "steps": steps, "write_interval": interval, "timestep_fs": 0.25,
            "field": {"type": "static", "vector": [0.0, 0.0, 0.05]}}))
        return path

    assert run("md", config("md_ref"), "--no-progress").returncode == 0
    reference = ase.io.read(setup / "md_ref" / "trajectory.xyz", ":")
    trajectory = setup / "md_killed" / "trajectory.xyz"
    target, kills = config("md_killed"), 0
    for attempt in range(3):
        frames_before = len(trajectory.read_text().split("Properties=")) - 1 \
            if trajectory.exists() else 0
        args = ["md", target, "--no-progress"] + (["--resume"] if attempt else [])

        def progressed(before=frames_before):
            return trajectory.exists() and trajectory.stat().st_size > 0 and len(
                trajectory.read_text().split("Properties=")) - 1 >= before + 3

        kills += kill_after_progress(args, progressed, rng)
    finished = run("md", target, "--no-progress", "--resume")
    assert finished.returncode == 0, finished.stderr
    assert kills >= 2
    frames = ase.io.read(trajectory, ":")
    assert [f.info["step"] for f in frames] == list(range(0, steps + 1, interval))
    # the same dynamics: a restart continues from positions and momenta stored to 1e-8,
    # which the chaotic dynamics amplifies to ~1e-5 Å here; a lost or wrong state would
    # differ by ~0.1 Å within a few hundred steps
    for mine, theirs in zip(frames, reference, strict=True):
        np.testing.assert_allclose(mine.positions, theirs.positions, atol=1e-3)
    log = np.loadtxt(setup / "md_killed" / "md.log")
    np.testing.assert_allclose(log[:, 0], [f.info["time_fs"] for f in frames])
    reference_log = np.loadtxt(setup / "md_ref" / "md.log")
    np.testing.assert_allclose(log[:, 3], reference_log[:, 3], atol=1e-4)  # Etot, continuous
    summary = json.loads((setup / "md_killed" / "summary.json").read_text())
    assert summary["step"] == steps and len(summary["segments"]) >= 2
    no_temporary_files(setup / "md_killed")


def test_training_killed_and_resumed_gives_the_same_model(setup):
    rng = random.Random(5)

    def config(name: str) -> Path:
        path = setup / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "data": {"train": "data.xyz", "valid_fraction": 0.25},
            "model": {"family": "response", **TINY},
            "training": {"max_epochs": 40, "batch_size": 10, "checkpoint_every": 3,
                         "seed": 2}, "output": name}))
        return path

    assert run("train", config("train_ref"), "--no-progress").returncode == 0
    target, kills = config("train_killed"), 0
    checkpoint = setup / "train_killed" / "checkpoint.pt"
    for attempt in range(3):
        before = checkpoint.stat().st_mtime_ns if checkpoint.exists() else 0
        args = ["train", target, "--no-progress"] + (["--resume"] if attempt else [])
        kills += kill_after_progress(
            args, lambda b=before: checkpoint.exists() and checkpoint.stat().st_mtime_ns > b,
            rng)
    finished = run("train", target, "--no-progress", "--resume")
    assert finished.returncode == 0, finished.stderr
    assert kills >= 2
    mine = load_model(setup / "train_killed" / "model.pt").state_dict()
    theirs = load_model(setup / "train_ref" / "model.pt").state_dict()
    for key, value in theirs.items():
        torch.testing.assert_close(mine[key], value, rtol=0, atol=0,
                                   msg=lambda m, key=key: f"{key}: {m}")
    for name in ("metrics.json",):
        json.loads((setup / "train_killed" / name).read_text())  # complete JSON
    no_temporary_files(setup / "train_killed")


def test_labelling_killed_and_rerun_gives_the_same_labels(setup):
    pytest.importorskip("pyscf")
    rng = random.Random(3)
    frames = read_frames(setup / "data.xyz")[:30]
    write_frames(frames, setup / "to_label.xyz")
    options = ["--backend", "pyscf", "--xc", "HF", "--basis", "sto-3g",
               "--properties", "energy,forces,dipole", "--no-progress"]
    assert run("label", setup / "to_label.xyz", setup / "ref.xyz", *options).returncode == 0
    parts = setup / "killed.xyz.parts"
    kills = 0
    for _ in range(3):
        before = len(list(parts.glob("*.xyz"))) if parts.exists() else 0
        kills += kill_after_progress(
            ["label", setup / "to_label.xyz", setup / "killed.xyz", *options],
            lambda b=before: parts.exists() and len(list(parts.glob("*.xyz"))) >= b + 2, rng,
            delay=0.15)
    finished = run("label", setup / "to_label.xyz", setup / "killed.xyz", *options)
    assert finished.returncode == 0, finished.stderr
    assert kills >= 2
    mine, theirs = read_frames(setup / "killed.xyz"), read_frames(setup / "ref.xyz")
    assert len(mine) == len(theirs) == 30
    for a, b in zip(mine, theirs, strict=True):
        for key in ("energy", "forces", "dipole"):
            np.testing.assert_allclose(a.labels[key], b.labels[key], atol=1e-8, rtol=0)
    assert not parts.exists()
    no_temporary_files(setup)


def test_learning_killed_and_resumed_gives_the_same_data_and_model(setup):
    pytest.importorskip("pyscf")
    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    rng = random.Random(7)
    ase.io.write(setup / "monomer.xyz", next(
        f.atoms for f in read_frames(setup / "data.xyz") if len(f.atoms) == 3))

    def config(name: str) -> Path:
        path = setup / f"{name}.yaml"
        path.write_text(yaml.safe_dump(learn_config("monomer.xyz", name, steps=150,
                                                    max_dft_calls=4)))
        return path

    reference = run("learn", config("learn_ref"), "--no-progress")
    assert reference.returncode == 0, reference.stderr
    out = setup / "learn_killed"
    data, trajectory = out / "data.xyz", out / "md" / "trajectory.xyz"

    def marks() -> tuple[int, int]:
        return (data.stat().st_mtime_ns if data.exists() else 0,
                trajectory.stat().st_size if trajectory.exists() else 0)

    target, kills = config("learn_killed"), 0
    for attempt in range(4):
        before = marks()
        args = ["learn", target, "--no-progress"] + (["--resume"] if attempt else [])
        # progress: a labelled frame stored, or MD frames written
        kills += kill_after_progress(args, lambda b=before: marks() != b, rng, delay=1.0)
    finished = run("learn", target, "--no-progress", "--resume")
    assert finished.returncode == 0, finished.stderr
    assert kills >= 3
    mine = json.loads((out / "learn.json").read_text())
    theirs = json.loads((setup / "learn_ref" / "learn.json").read_text())
    assert mine["ended_by"] == theirs["ended_by"] and mine["steps"] == theirs["steps"]
    assert [c["step"] for c in mine["calls"]] == [c["step"] for c in theirs["calls"]]
    for a, b in zip(mine["calls"], theirs["calls"], strict=True):
        for key in ("uncertainty_before", "uncertainty_after", "threshold", "calibration"):
            assert a[key] == pytest.approx(b[key], rel=1e-3), key
    frames, reference_frames = read_frames(data), read_frames(setup / "learn_ref" / "data.xyz")
    assert len(frames) == len(reference_frames) == 3 + len(theirs["calls"])
    for a, b in zip(frames, reference_frames, strict=True):
        np.testing.assert_allclose(a.atoms.positions, b.atoms.positions, atol=1e-4)
        np.testing.assert_allclose(a.labels["forces"], b.labels["forces"], atol=1e-4)
    # the same final model: its predictions on every labelled frame
    batch = collate(reference_frames)
    p_mine = evaluate(load_model(out / "model.pt"), batch)
    p_theirs = evaluate(load_model(setup / "learn_ref" / "model.pt"), batch)
    for key in ("energy", "forces", "dipole"):
        torch.testing.assert_close(p_mine[key], p_theirs[key], rtol=1e-4, atol=1e-4)
    steps = [f.info["step"] for f in ase.io.read(trajectory, ":")]
    assert steps == [f.info["step"] for f in ase.io.read(
        setup / "learn_ref" / "md" / "trajectory.xyz", ":")]  # continuous and complete
    no_temporary_files(out)
