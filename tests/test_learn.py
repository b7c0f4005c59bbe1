"""On-the-fly learning (``fieldforce learn``): a water molecule in a field with PySCF at a
cheap level (HF/STO-3G); DFT calls where the kernel model is unsure, each lowering the
uncertainty it was called for, resumable, refusing what cannot work."""

from __future__ import annotations

import functools
import json

import ase.io
import numpy as np
import pytest

from fieldforce.datasets import load_water
from fieldforce.errors import ConfigError
from learn_settings import learn_config

pytest.importorskip("pyscf")
pytest.importorskip("featomic.torch")
# tiny systems: more threads (torch's, PySCF's OpenMP) only contend on a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def monomer():
    return load_water("monomer")[0].atoms


def config(tmp_path, **changes):
    if not (tmp_path / "start.xyz").exists():
        ase.io.write(tmp_path / "start.xyz", monomer())
    base = learn_config("start.xyz", "learn", steps=120, max_dft_calls=2)
    base.update(changes)
    return base


def test_learning_calls_dft_where_unsure_and_resumes(tmp_path):
    from fieldforce.data.io import read_frames
    from fieldforce.models import load_model
    from fieldforce.pipelines.learn import learn

    state = learn(config(tmp_path), base_dir=tmp_path, progress=False)
    out = tmp_path / "learn"
    assert state["dft_calls"] == 2 and state["ended_by"].startswith("DFT budget spent")
    frames = read_frames(out / "data.xyz")
    assert len(frames) == 3 + 2
    assert np.allclose(frames[-1].efield, [0, 0, 0.1])  # labelled at the MD's field
    for call in state["calls"]:
        assert call["error_before"] > 0 and call["calibration"] > 0  # on-line calibration
        assert call["uncertainty_before"] > call["threshold"]
        # relative to each model's own threshold, the frame is no longer a surprise
        assert call["uncertainty_after"] / call["threshold_after"] < (
            call["uncertainty_before"] / call["threshold"])
    assert json.loads((out / "learn.json").read_text())["dft_calls"] == 2
    load_model(out / "model.pt")
    with pytest.raises(ConfigError, match="learn.json already exists; pass --resume"):
        learn(config(tmp_path), base_dir=tmp_path, progress=False)
    # a larger budget and --resume: continues from the same state and data
    steps_before = state["steps"]
    state = learn(config(tmp_path, max_dft_calls=5), base_dir=tmp_path, resume=True,
                  progress=False)
    assert state["dft_calls"] >= 2 and len(read_frames(out / "data.xyz")) == 3 + state[
        "dft_calls"]
    assert state["steps"] >= steps_before
    if state["ended_by"].startswith("md.steps"):
        assert state["steps"] == 120


def test_learning_refuses_what_cannot_work(tmp_path):
    from fieldforce.pipelines.learn import learn

    with pytest.raises(ConfigError, match="needs a closed-form family"):
        learn(config(tmp_path, model={"family": "response"}), base_dir=tmp_path,
              progress=False)
    with pytest.raises(ConfigError, match="md.model: set by the learn file itself"):
        learn(config(tmp_path, md={"model": "x.pt", "steps": 10, "ensemble": "nve"}),
              base_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="temperature"):  # the MD settings, checked first
        learn(config(tmp_path, md={"steps": 10, "ensemble": "langevin"}), base_dir=tmp_path,
              progress=False)
