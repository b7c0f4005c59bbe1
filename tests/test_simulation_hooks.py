"""The simulation layer's hooks: per-step callbacks with an interval, observers, stopping
a run from a callback (and resuming it), fields that follow the atoms."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch

from fieldforce.fields import UniformField
from fieldforce.models import build_model, save_model
from fieldforce.simulation import FieldForceCalculator, MDRun, Observer, run_md

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def md_dir(tmp_path_factory, water):
    """A gentle untrained response model (energy head scaled down, see
    test_calculator_md.md_dir) and a water dimer."""
    d = tmp_path_factory.mktemp("hooks")
    torch.manual_seed(0)
    model = build_model({"species": [1, 8], "descriptor": {"cutoff": 3.0, "max_radial": 2,
                                                           "max_angular": 2},
                         "hidden": [8]})
    model.fit_statistics(water[:50])
    model.backbone.energy_scale.mul_(0.1)
    save_model(model, d / "model.pt")
    dimer = next(f.atoms for f in water if f.atoms.info.get("config_type") == "dimer").copy()
    dimer.info = {}
    ase.io.write(d / "dimer.xyz", dimer, format="extxyz")
    return d


def config(out: str, **kw) -> dict:
    return {"structure": "dimer.xyz", "model": "model.pt", "output": out, "ensemble": "nve",
            "steps": 10, "timestep_fs": 0.25, "write_interval": 4, **kw}


def test_callbacks_run_at_their_interval_after_the_builtin_observers(md_dir):
    seen = []

    def record(run):
        # the trajectory writer (a built-in observer) has already written a due step
        frames = ase.io.read(run.trajectory, ":")
        seen.append((run.step, run.time_fs, frames[-1].info["step"]))

    summary = run_md(config("every3"), base_dir=md_dir, progress=False,
                     observers=[(record, 3)])
    assert [s[0] for s in seen] == [0, 3, 6, 9]  # ASE's rule: steps that the interval divides
    np.testing.assert_allclose([s[1] for s in seen], [0.0, 0.75, 1.5, 2.25])
    assert [s[2] for s in seen] == [0, 0, 4, 8]
    assert summary["stopped_by"] == "steps" and summary["step"] == 10


def test_an_observer_gets_every_hook_and_adds_to_the_summary(md_dir):
    class Counter(Observer):
        interval = 2

        def __init__(self):
            self.started, self.before, self.after = 0, [], []

        def start(self, run):
            self.started += 1

        def before_step(self, run, step):
            self.before.append(step)

        def __call__(self, run):
            self.after.append((run.step, run.initial))

        def finish(self, run):
            return {"counter_calls": len(self.after)}

    counter = Counter()
    summary = run_md(config("hooks", steps=5), base_dir=md_dir, progress=False,
                     observers=[counter])
    assert counter.started == 1
    assert counter.before == [0, 1, 2, 3, 4, 5]  # 0: before the initial evaluation
    assert counter.after == [(0, True), (2, False), (4, False)]
    assert summary["counter_calls"] == 3


def test_a_callback_stops_the_run_and_resume_continues_it(md_dir):
    run = MDRun(config("stopped"), base_dir=md_dir, progress=False)
    run.attach(lambda r: r.request_stop("test threshold") if r.step == 5 else None)
    summary = run.run()
    assert summary["stopped_by"] == "test threshold"
    assert summary["step"] == 5 and summary["steps_done"] == 5
    frames = ase.io.read(summary["trajectory"], ":")
    assert [f.info["step"] for f in frames] == [0, 4, 5]  # the stop step is written
    log = np.loadtxt(summary["log"])
    np.testing.assert_allclose(log[:, 0], [0.0, 1.0, 1.25])

    resumed = run_md(config("stopped"), base_dir=md_dir, resume=True, progress=False)
    assert resumed["stopped_by"] == "steps" and resumed["step"] == 10
    assert resumed["steps_done"] == 5
    frames = ase.io.read(resumed["trajectory"], ":")
    assert [f.info["step"] for f in frames] == [0, 4, 5, 8, 10]

    # the same 10 steps without the stop: the same final state (to the file's precision)
    straight = run_md(config("straight"), base_dir=md_dir, progress=False)
    last = ase.io.read(straight["trajectory"], -1)
    np.testing.assert_allclose(frames[-1].positions, last.positions, atol=1e-7)


def test_callback_arguments_are_checked(md_dir):
    run = MDRun(config("bad"), base_dir=md_dir, progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        run.attach(lambda r: None, interval=0)
    with pytest.raises(TypeError, match="callable"):
        run.attach(42)


class CentroidField(UniformField):
    """A uniform field whose strength follows the atoms' mean height (a stand-in for a
    field re-solved around a moving surface): E = (0, 0, k * mean z)."""

    config_type = ""  # no config form
    depends_on_atoms = True

    def __init__(self, k: float):
        super().__init__([0.0, 0.0, 0.0])
        self.k, self.updates = k, []

    def update(self, atoms, time_fs=0.0) -> bool:
        self.updates.append(time_fs)
        new = np.array([0.0, 0.0, self.k * atoms.positions[:, 2].mean()])
        changed = not np.array_equal(new, self.vector)
        self.vector = new
        return changed


def test_the_calculator_updates_a_field_that_follows_the_atoms(md_dir):
    from fieldforce.models import load_model

    atoms = ase.io.read(md_dir / "dimer.xyz")
    field = CentroidField(0.01)
    atoms.calc = FieldForceCalculator(load_model(md_dir / "model.pt"), efield=field,
                                      time_fs=2.0)
    atoms.get_potential_energy()
    np.testing.assert_allclose(atoms.calc.results["efield"],
                               [0, 0, 0.01 * atoms.positions[:, 2].mean()])
    atoms.get_forces()  # cached: no new evaluation, no update
    atoms.positions[:, 2] += 0.3
    atoms.get_potential_energy()
    assert field.updates == [2.0, 2.0]
    np.testing.assert_allclose(atoms.calc.results["efield"],
                               [0, 0, 0.01 * atoms.positions[:, 2].mean()])
