"""Regression tests of the reliability issue: no silent data loss, no overwritten results,
one clear error everywhere, warnings outside the training domain."""

from __future__ import annotations

import json
import warnings

import ase.io
import numpy as np
import pytest
import torch
import yaml

from fieldforce.cli.main import main
from fieldforce.data.io import read_frames, write_frames
from fieldforce.errors import BackendError, DataError, DomainWarning
from fieldforce.models import build_model, load_model, save_model
from fieldforce.simulation import FieldForceCalculator, run_md
from fieldforce.training.evaluation import format_metrics, metrics

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"descriptor": {"cutoff": 3.0, "max_radial": 2, "max_angular": 2}, "hidden": [8]}


@pytest.fixture(scope="module")
def files(water, tmp_path_factory):
    """A directory with small canonical data files, a tiny model whose training domain is
    the field-free and finite-field water frames (largest field ~0.1 V/Å), a dimer."""
    d = tmp_path_factory.mktemp("reliability")
    small = [f for f in water if len(f.atoms) <= 6]
    write_frames(small[:24], d / "data.xyz")
    no_dipoles = [f.copy() for f in small[:24]]
    for f in no_dipoles:
        f.labels.pop("dipole"), f.labels.pop("polarizability")
    write_frames(no_dipoles, d / "no_dipoles.xyz")
    write_frames(small[:1], d / "one.xyz")
    torch.manual_seed(0)
    model = build_model({"species": [1, 8], **TINY})
    model.fit_statistics(water)
    model.record_domain(water)
    model.backbone.energy_scale.mul_(0.1)  # gentle, as in test_calculator_md
    save_model(model, d / "model.pt")
    dimer = next(f.atoms for f in water if f.atoms.info.get("config_type") == "dimer").copy()
    dimer.info = {}
    ase.io.write(d / "dimer.xyz", dimer, format="extxyz")
    return d


def cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return code, err


def one_sentence(code: int, err: str) -> bool:
    return code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


# 1. outputs never overwrite inputs ------------------------------------------------------

def test_no_command_writes_over_its_input(files, capsys):
    data = files / "data.xyz"
    before = data.read_bytes()
    for args in (["data", "split", data, data, files / "b.xyz"],
                 ["data", "split", data, files / "a.xyz", files / "." / "a.xyz"],
                 ["data", "convert", data, files / "sub" / ".." / "data.xyz"],
                 ["data", "info", data, "--json", data],
                 ["eval", files / "model.pt", data, "--json", files / "model.pt"]):
        code, err = cli(capsys, *args)
        assert one_sentence(code, err), (args, err)
        assert "would overwrite" in err or "are the same file" in err
    assert data.read_bytes() == before and not (files / "a.xyz").exists()
    if __import__("importlib").util.find_spec("pyscf"):
        code, err = cli(capsys, "label", data, data, "--no-progress")
        assert one_sentence(code, err) and "would overwrite" in err
    inside = files / "inside"
    inside.mkdir(exist_ok=True)
    ase.io.write(inside / "trajectory.xyz", ase.io.read(files / "dimer.xyz"), format="extxyz")
    md = files / "inside.yaml"
    md.write_text(yaml.safe_dump({"structure": "inside/trajectory.xyz", "model": "model.pt",
                                  "output": "inside", "ensemble": "nve", "steps": 1}))
    trajectory = inside / "trajectory.xyz"
    structure = trajectory.read_bytes()
    code, err = cli(capsys, "md", md, "--no-progress")
    assert one_sentence(code, err) and trajectory.read_bytes() == structure
    code, err = cli(capsys, "analyze", "ir", trajectory, "--json", trajectory)
    assert one_sentence(code, err) and "would overwrite" in err
    assert data.read_bytes() == before


# 2. the training domain ---------------------------------------------------------------

def test_calculator_warns_once_beyond_the_training_field(files):
    model = load_model(files / "model.pt")
    assert 0.09 < model.domain()["max_field"] < 0.11
    atoms = ase.io.read(files / "dimer.xyz")
    atoms.calc = FieldForceCalculator(model, efield=[0.0, 0.0, 0.05])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        atoms.get_potential_energy()  # inside the domain: silent
    atoms.calc = FieldForceCalculator(model, efield=[0.0, 0.0, 0.5])
    with pytest.warns(DomainWarning, match=r"0\.5 V/Å.*up to 0\.0998 V/Å \(5\.0x\)"):
        atoms.get_potential_energy()
    atoms.positions[0, 0] += 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        atoms.get_potential_energy()  # once per calculator


def test_a_compressed_structure_is_flagged_as_extrapolation(files):
    model = load_model(files / "model.pt")
    atoms = ase.io.read(files / "dimer.xyz")
    atoms.calc = FieldForceCalculator(model)
    atoms.get_potential_energy()
    assert atoms.calc.results["extrapolation"].max() < model.extrapolation_threshold
    squeezed = atoms.copy()
    squeezed.positions *= 0.75
    squeezed.calc = FieldForceCalculator(model)
    with pytest.warns(DomainWarning, match="training standard deviations outside"):
        squeezed.get_potential_energy()
    assert squeezed.calc.results["extrapolation"].max() > model.extrapolation_threshold


def test_md_beyond_the_domain_says_so_in_its_log_and_summary(files):
    config = {"structure": "dimer.xyz", "model": "model.pt", "output": "md_strong",
              "ensemble": "nve", "steps": 4, "write_interval": 2, "timestep_fs": 0.25,
              "field": {"type": "static", "vector": [0.0, 0.0, 0.5]}}
    with pytest.warns(DomainWarning):
        summary = run_md(config, base_dir=files, progress=False)
    log = (files / "md_strong" / "md.log").read_text()
    assert "# warning (step 0): the field reaches 0.5 V/Å" in log
    assert np.loadtxt(files / "md_strong" / "md.log").shape == (3, 11)  # rows still read
    domain = summary["domain"]
    assert domain["max_field_V_per_A"] == pytest.approx(0.5)
    assert len(domain["warnings"]) == 1


def test_label_warns_beyond_a_sane_field(files):
    pytest.importorskip("pyscf")
    from fieldforce.reference.backend import get_backend
    from fieldforce.reference.labelling import label_frames

    frames = read_frames(files / "one.xyz")
    with pytest.warns(UserWarning, match=r"fields up to 10 V/Å exceed 0\.5 V/Å.*pyscf"):
        report = label_frames(frames, files / "strong.xyz", get_backend("pyscf", basis="sto-3g"),
                              ["energy"], efield=[0, 0, 10.0], progress=False, max_seconds=0)
    assert report.stopped_early and report.labelled == 0


# 3-6. training: existing models, missing labels, bad outputs, too little data ----------

def train_file(files, name: str, **changes) -> str:
    config = {"data": {"train": "data.xyz", "valid_fraction": 0.25},
              "model": {"family": "response", **TINY},
              "training": {"max_epochs": 1, "batch_size": 8}, "output": name}
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            config[section][sub] = value
        else:
            config[section] = value
    path = files / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_train_refuses_an_existing_model_without_resume_or_overwrite(files, capsys):
    config = train_file(files, "trained")
    assert cli(capsys, "train", config, "--no-progress")[0] == 0
    model = (files / "trained" / "model.pt").read_bytes()
    code, err = cli(capsys, "train", config, "--no-progress")
    assert one_sentence(code, err) and "--resume" in err and "--overwrite" in err
    assert (files / "trained" / "model.pt").read_bytes() == model
    assert cli(capsys, "train", config, "--no-progress", "--overwrite")[0] == 0


def test_a_weighted_term_without_labels_is_an_error(files, capsys):
    config = train_file(files, "nodip", data__train="no_dipoles.xyz")
    code, err = cli(capsys, "train", config, "--no-progress")
    assert one_sentence(code, err)
    assert "training.loss_weights.dipole" in err and "no_dipoles.xyz" in err
    assert not (files / "nodip").exists()
    config = train_file(files, "nodip_warn", data__train="no_dipoles.xyz",
                        training__missing_labels="warn")
    with pytest.warns(UserWarning, match="training without it"):
        assert cli(capsys, "train", config, "--no-progress")[0] == 0
    config = train_file(files, "nobec", training__loss_weights={"energy": 1,
                                                               "born_charges": 1})
    code, err = cli(capsys, "train", config, "--no-progress")
    assert one_sentence(code, err) and "does not predict born_charges" in err


def test_bad_output_paths_are_one_sentence(files, capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    config = train_file(files, "unused", output=str(tmp_path / "afile" / "run"))
    assert one_sentence(*cli(capsys, "train", config, "--no-progress"))
    config = train_file(files, "unused", output=str(tmp_path / "afile"))
    code, err = cli(capsys, "train", config, "--no-progress")
    assert one_sentence(code, err) and "is a file, not a directory" in err
    md = files / "md_file.yaml"
    md.write_text(yaml.safe_dump({"structure": "dimer.xyz", "model": "model.pt",
                                  "output": str(tmp_path / "afile"), "ensemble": "nve",
                                  "steps": 1}))
    code, err = cli(capsys, "md", md, "--no-progress")
    assert one_sentence(code, err) and "is a file, not a directory" in err
    code, err = cli(capsys, "data", "info", files / "data.xyz", "--json",
                    tmp_path / "afile" / "s.json")
    assert one_sentence(code, err)
    capsys.readouterr()
    assert main(["data", "info", str(files / "data.xyz"), "--json",
                 str(tmp_path / "new" / "dir" / "s.json")]) == 0
    assert json.loads((tmp_path / "new" / "dir" / "s.json").read_text())["frames"] == 24
    code, err = cli(capsys, "eval", files / "model.pt", files / "data.xyz", "--plots",
                    tmp_path / "afile")
    assert one_sentence(code, err) and "--plots" in err


def test_empty_and_too_small_inputs(files, capsys, tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    code, err = cli(capsys, "data", "info", empty)
    assert one_sentence(code, err) and "no frames" in err
    code, err = cli(capsys, "data", "convert", empty, tmp_path / "out.xyz")
    assert one_sentence(code, err) and not (tmp_path / "out.xyz").exists()
    config = train_file(files, "tiny_run", data__train="one.xyz")
    code, err = cli(capsys, "train", config, "--no-progress")
    assert one_sentence(code, err) and "one.xyz: 1 frame" in err
    assert not (files / "tiny_run").exists()


# 7, 9. truncated trajectories, resumed summaries --------------------------------------

def md_config(**kw) -> dict:
    return {"structure": "dimer.xyz", "model": "model.pt", "output": "md", "ensemble": "nve",
            "steps": 8, "write_interval": 2, "timestep_fs": 0.25, **kw}


def test_resume_after_a_truncated_frame_and_the_whole_run_summary(files, capsys):
    first = run_md(md_config(output="md_cut", steps=24), base_dir=files, progress=False)
    trajectory = files / "md_cut" / "trajectory.xyz"
    text = trajectory.read_text()
    trajectory.write_text(text[:-150])  # a run killed while writing its last frame
    with pytest.warns(UserWarning, match="frame 12: line .*truncated.*reading the complete"):
        assert main(["analyze", "ir", str(trajectory)]) == 0
    with pytest.warns(UserWarning, match="resuming from the last complete frame \\(step 22\\)"):
        resumed = run_md(md_config(output="md_cut", steps=30), base_dir=files, resume=True,
                         progress=False)
    frames = ase.io.read(trajectory, ":")
    assert [f.info["step"] for f in frames] == list(range(0, 31, 2))
    log = np.loadtxt(files / "md_cut" / "md.log")
    np.testing.assert_allclose(log[:, 0], np.arange(0, 7.51, 0.5))  # no duplicated rows
    assert resumed["step"] == 30 and resumed["steps_done"] == 8
    assert [s["start_step"] for s in resumed["segments"]] == [0, 22]
    assert first["mean_temperature_K"] is not None
    # resuming a finished run keeps the statistics of the whole run
    again = run_md(md_config(output="md_cut", steps=30), base_dir=files, resume=True,
                   progress=False)
    assert again["steps_done"] == 0 and again["step"] == 30
    assert again["mean_temperature_K"] == pytest.approx(resumed["mean_temperature_K"])
    assert again["energy_drift_eV_per_atom_per_ps"] == pytest.approx(
        resumed["energy_drift_eV_per_atom_per_ps"])


# 8. label settings are checked before labelling ----------------------------------------

def test_label_checks_functional_and_basis_up_front(files, capsys):
    pytest.importorskip("pyscf")
    from fieldforce.reference.backend import get_backend
    from fieldforce.reference.labelling import label_frames

    frames = read_frames(files / "one.xyz")
    with pytest.raises(BackendError, match="unknown functional 'PBEX'"):
        label_frames(frames, files / "x.xyz", get_backend("pyscf", xc="PBEX"), ["energy"],
                     progress=False)
    with pytest.raises(BackendError, match="'aug-cc-pvzz' has no functions for H"):
        label_frames(frames, files / "x.xyz", get_backend("pyscf", basis="aug-cc-pvzz"),
                     ["energy"], progress=False)
    assert not (files / "x.xyz.parts").exists()


# 10. parse errors name the file, frame and line ------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda t: t[:len(t) // 2], r"frame \d+: line \d+: .*truncated"),
    (lambda t: t.replace("\nO ", "\nXx ", 1), r"frame 0: line 3: atom 0: unknown element 'Xx'"),
    (lambda t: "3 atoms" + t[t.index("\n"):], r"frame 0: line 1: expected the number of atoms"),
    (lambda t: t.replace("\nO ", "\nO abc ", 1), r"frame 0: line 3: atom 0: expected \d+ col"),
])
def test_parse_errors_name_frame_and_line(files, tmp_path, capsys, edit, message):
    bad = tmp_path / "bad.xyz"
    bad.write_text(edit((files / "data.xyz").read_text()))
    with pytest.raises(DataError, match="bad.xyz, " + message):
        read_frames(bad)
    code, err = cli(capsys, "data", "info", bad)
    assert one_sentence(code, err)


def test_a_value_that_is_not_a_number(tmp_path):
    text = ('1\nProperties=species:S:1:pos:R:3 pbc="F F F"\n'
            "H 0.0 0.0 zero\n")
    (tmp_path / "nan.xyz").write_text(text)
    with pytest.raises(DataError, match="frame 0: line 3: atom 0: column 'pos': 'zero' is not"):
        read_frames(tmp_path / "nan.xyz")


# 11. an element the model never saw ----------------------------------------------------

def test_an_unknown_element_is_refused_before_anything_is_written(files, capsys):
    atoms = ase.io.read(files / "dimer.xyz")
    atoms.numbers[0] = 6
    ase.io.write(files / "carbon.xyz", atoms, format="extxyz")
    cfg = files / "carbon.yaml"
    cfg.write_text(yaml.safe_dump(md_config(structure="carbon.xyz", output="md_carbon")))
    code, err = cli(capsys, "md", cfg, "--no-progress")
    assert one_sentence(code, err)
    assert "carbon.xyz has C (Z=6)" in err and "retrain" in err
    assert "descriptor settings" not in err
    assert not (files / "md_carbon").exists()


# 12. smaller messages ----------------------------------------------------------------

def test_smaller_messages(files, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "model.pt"
    broken.write_bytes((files / "model.pt").read_bytes()[:1000])
    with pytest.raises(DataError, match="not a readable fieldforce model file") as info:
        load_model(broken)
    assert "PytorchStreamReader" not in str(info.value) and "zip" not in str(info.value)

    import fieldforce.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    code = main(["train", train_file(files, "interrupted"), "--no-progress"])
    assert code == 130 and "rerun with --resume" in capsys.readouterr().err

    frame = read_frames(files / "one.xyz")[0]
    frame.labels["energy"] = np.array(np.nan)
    write_frames([frame], tmp_path / "nan.xyz")
    with pytest.raises(DataError, match=r"non-finite value \(NaN or inf\) in energy$"):
        read_frames(tmp_path / "nan.xyz")

    table = metrics({"energy": {"pred": np.array([1.0]), "ref": np.array([1.5])}})
    assert table["energy"]["rrmse"] is None
    assert "nan" not in format_metrics(table) and "n/a" in format_metrics(table)


def test_composition_baseline_is_the_minimum_norm_least_squares_fit():
    """The energy baseline (normal equations formed exactly, for bit-reproducible resumed
    training) equals the least-squares solution, full rank and rank-deficient (water:
    every structure H2nOn, so only 2 b_H + b_O is determined; the minimum-norm one)."""

    from fieldforce.models.backbone import composition_baseline

    rng = np.random.default_rng(0)
    counts = torch.tensor(rng.integers(0, 9, size=(40, 3)), dtype=torch.float64)
    energy = counts @ torch.tensor([-13.6, -1030.2, -2040.0], dtype=torch.float64) + torch.tensor(
        rng.normal(0, 0.01, 40))
    expected = torch.linalg.lstsq(counts, energy[:, None]).solution[:, 0]
    torch.testing.assert_close(composition_baseline(counts, energy), expected, rtol=1e-12,
                               atol=1e-9)
    n = torch.tensor(rng.integers(1, 4, size=20), dtype=torch.float64)
    water = torch.stack([2 * n, n], dim=1)
    energy = -2079.0 * n
    b = composition_baseline(water, energy)
    assert float(2 * b[0] + b[1]) == pytest.approx(-2079.0, rel=1e-12)
    # minimum norm: b is parallel to (2, 1)
    assert float(b[0]) == pytest.approx(2 * float(b[1]), rel=1e-12)


def test_a_killed_piece_keeps_the_summary_of_the_pieces_before_it(files):
    """Pieces 0-24 (summary written), 24-32 (killed: no summary), 32-40: the whole-run
    summary keeps the first piece's wall time and domain record and marks the killed one."""
    run_md(md_config(output="md_pieces", steps=24), base_dir=files, progress=False)
    summary = files / "md_pieces" / "summary.json"
    first = json.loads(summary.read_text())
    first["domain"]["warnings"] = ["an earlier warning"]  # stands for one from piece 1
    first["domain"]["max_extrapolation"] = 99.0
    text = json.dumps(first)
    run_md(md_config(output="md_pieces", steps=32), base_dir=files, resume=True,
           progress=False)
    summary.write_text(text)  # as if the second piece had been killed before its summary
    final = run_md(md_config(output="md_pieces", steps=40), base_dir=files, resume=True,
                   progress=False)
    assert [s["start_step"] for s in final["segments"]] == [0, 24, 32]
    assert [s["steps_done"] for s in final["segments"]] == [24, 8, 8]
    assert final["segments"][0]["wall_time_s"] == first["segments"][0]["wall_time_s"]
    assert final["segments"][1]["wall_time_s"] is None
    assert "an earlier warning" in final["domain"]["warnings"]
    assert final["domain"]["max_extrapolation"] == 99.0
