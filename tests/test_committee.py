"""Committees: the mean of the members' predictions and their spread, checked against the
members evaluated one by one; save/load, calibration, the CLI and its errors."""

import json

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms

from fieldforce.cli.main import main
from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.data.io import write_frames
from fieldforce.errors import ConfigError
from fieldforce.fields import PointChargeField
from fieldforce.models import CommitteeModel, build_model, evaluate, load_model, save_model
from fieldforce.simulation import FieldForceCalculator
from fieldforce.training import Trainer, load_config

pytestmark = pytest.mark.usefixtures("one_thread")

RESPONSE = {"descriptor": {"max_radial": 3, "max_angular": 2}, "hidden": [16], "channels": 4,
            "species": [1, 8]}
QEQ = {"family": "qeq", "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.5},
       "hidden": [16], "species": [1, 8]}
LATENT = {"family": "latent", "descriptor": {"max_radial": 3, "max_angular": 2, "cutoff": 3.5},
          "hidden": [16], "species": [1, 8]}
FIELD = torch.tensor([0.03, -0.05, 0.08], dtype=torch.float64)


def members(config, frames, k=3):
    """``k`` models of ``config`` with different random weights."""
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        m = build_model(config)
        m.fit_statistics(frames)
        with torch.no_grad():  # random, not zero, output layers: the members disagree
            for p in m.parameters():
                p.add_(0.3 * torch.randn_like(p))
        models.append(m.eval())
    return models


@pytest.fixture(scope="module")
def frames(water):
    return [f for f in water if f.atoms.info.get("config_type") in ("dimer", "trimer")][:8]


@pytest.fixture(scope="module")
def response(frames):
    return members(RESPONSE, frames)


def stacked(models, batch, **kwargs):
    outs = [evaluate(m, batch, **kwargs) for m in models]
    return {key: torch.stack([o[key].detach() for o in outs])
            for key in ("energy", "forces", "dipole", "polarizability")}


def test_mean_and_spread_are_the_members(response, frames):
    committee = CommitteeModel.from_models(response)
    assert committee.shares_density  # one featomic density for the three members
    batch = collate(frames[:5])
    names = {"energy_uncertainty", "forces_uncertainty", "dipole_uncertainty",
             "polarizability_uncertainty"}
    assert names <= committee.requestable()
    out = evaluate(committee, batch, field=FIELD, requests=names)
    each = stacked(response, batch, field=FIELD)
    for key in ("energy", "forces", "dipole", "polarizability"):
        assert torch.allclose(out[key], each[key].mean(0), rtol=1e-12, atol=1e-12), key
        spread = out[f"{key}_uncertainty"]
        assert torch.allclose(spread, each[key].std(0), rtol=1e-10, atol=1e-12), key
        assert spread.abs().max() > 1e-4  # the members really differ
    # nothing asked, nothing paid: no spread computed
    assert "forces_uncertainty" not in evaluate(committee, batch, field=FIELD)


@pytest.mark.parametrize("family", ["response", "qeq"])
def test_force_spread_through_the_field_and_the_potential(family, response, frames):
    """Each member's forces for the spread include what reaches them through the field
    at the atoms (a point charge's field varies with the positions) and through the
    external potential (QEq: the force q_i E of a uniform field)."""
    models = response[:2] if family == "response" else members(QEQ, frames, k=2)
    committee = CommitteeModel.from_models(models)
    field = (PointChargeField(charge=0.8, center=[4.0, 1.0, -1.0]) if family == "response"
             else FIELD)
    batch = collate(frames[:3])
    out = evaluate(committee, batch, field=field, requests={"forces_uncertainty"})
    each = torch.stack([evaluate(m, batch, field=field)["forces"].detach() for m in models])
    assert torch.allclose(out["forces"], each.mean(0), atol=1e-12)
    assert torch.allclose(out["forces_uncertainty"], each.std(0), rtol=1e-10, atol=1e-12)
    # the field's share of the spread is really there
    without = torch.stack([evaluate(m, batch)["forces"].detach() for m in models])
    assert not torch.allclose(each.std(0), without.std(0), atol=1e-6)


def test_save_load_and_calculator(response, frames, tmp_path):
    committee = CommitteeModel.from_models(response)
    path = save_model(committee, tmp_path / "committee.pt")
    again = load_model(path)
    assert again.family == "committee" and len(again.members) == 3
    batch = collate(frames[:3])
    a = evaluate(committee, batch, field=FIELD, requests={"forces_uncertainty"})
    b = evaluate(again, batch, field=FIELD, requests={"forces_uncertainty"})
    for key in ("energy", "forces", "dipole", "forces_uncertainty"):
        assert torch.allclose(a[key], b[key], rtol=0, atol=0), key
    atoms = frames[0].atoms.copy()
    atoms.calc = FieldForceCalculator(again, efield=FIELD.numpy())
    forces = atoms.get_forces()
    sigma = atoms.calc.get_property("forces_uncertainty", atoms)
    one = collate([Frame(atoms)])
    each = stacked(response, one, field=FIELD)
    assert np.allclose(forces, each["forces"].mean(0).numpy(), atol=1e-10)
    assert np.allclose(sigma, each["forces"].std(0).numpy(), atol=1e-10)


def test_latent_committee_averages_the_born_field_forces(water, frames):
    """In a periodic cell the latent model's field force Z*^T E is no energy gradient
    (extra_forces): the committee's forces must still be the members' mean."""
    models = members(LATENT, frames, k=2)
    for m in models:
        with torch.no_grad():
            m.charge_unit.fill_(0.3)
    trimer = frames[-1].atoms
    cell = np.array([[7.0, 0.0, 0.0], [1.2, 7.5, 0.0], [-0.8, 0.6, 7.2]])
    box = Atoms(trimer.numbers[:6], positions=trimer.positions[:6] + 1.0, cell=cell, pbc=True)
    batch = collate([Frame(box)])
    committee = CommitteeModel.from_models(models)
    assert committee.has_charges
    out = evaluate(committee, batch, field=FIELD)
    each = [evaluate(m, batch, field=FIELD)["forces"].detach() for m in models]
    assert torch.allclose(out["forces"], torch.stack(each).mean(0), atol=1e-10)
    # the field force is really there: without it the members' forces would differ
    zero_field = [evaluate(m, batch)["forces"].detach() for m in models]
    assert (torch.stack(each) - torch.stack(zero_field)).abs().max() > 1e-3
    # stress (a strain: each member computes its own density) is the members' mean
    stress = evaluate(committee, batch, field=FIELD, stress=True)["stress"]
    each = [evaluate(m, batch, field=FIELD, stress=True)["stress"].detach() for m in models]
    assert torch.allclose(stress, torch.stack(each).mean(0), atol=1e-12)
    assert torch.stack(each).abs().max() > 1e-4


def test_calibration_makes_the_rms_z_score_one(response, frames):
    committee = CommitteeModel.from_models(response)
    labelled = [f for f in frames if "forces" in f.labels]
    factors = committee.calibrate(labelled)
    assert set(factors) >= {"energy", "forces"}
    for name, z in committee.zscores(labelled).items():
        assert float(z.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-8), name


def test_mixed_members_and_training_are_refused(response, frames):
    with pytest.raises(ConfigError, match="two or more"):
        CommitteeModel.from_models(response[:1])
    latent = members(LATENT, frames, k=1)[0]
    with pytest.raises(ConfigError, match="one family and head"):
        CommitteeModel.from_models([response[0], latent])
    with_carbon = build_model({**RESPONSE, "species": [1, 6, 8]})
    with pytest.raises(ConfigError, match="same elements"):
        CommitteeModel.from_models([response[0], with_carbon])
    with pytest.raises(ConfigError, match="members"):
        build_model({"family": "committee", "members": [RESPONSE, LATENT]})
    config = load_config({"data": {"train": "unused.xyz"}, "output": "unused",
                          "model": {"family": "committee", "members": [RESPONSE, RESPONSE]}})
    with pytest.raises(ConfigError, match="assembled from trained models"):
        Trainer(config, progress=False, data=(frames[:4], frames[4:6], [])).fit()


def test_cli_trains_seeds_assembles_calibrates_and_refuses(frames, tmp_path, capsys):
    data = tmp_path / "valid.xyz"
    write_frames(frames[:6], data)
    config = {"data": {"train": str(data), "valid_fraction": 0.2, "test_fraction": 0.0},
              "model": RESPONSE, "output": str(tmp_path / "unused"),
              "training": {"max_epochs": 2, "batch_size": 4}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    paths = []
    for seed in (1, 2):  # one file, two members: --seed and --output
        run = tmp_path / f"seed{seed}"
        assert main(["train", str(tmp_path / "train.yaml"), "--no-progress", "--seed",
                     str(seed), "--output", str(run)]) == 0
        assert json.loads((run / "metrics.json").read_text())["training"]["seed"] == seed
        paths.append(run / "model.pt")
    assert not (tmp_path / "unused").exists()
    capsys.readouterr()
    out = tmp_path / "committee.pt"
    assert main(["committee", *map(str, paths), "-o", str(out), "--calibrate", str(data)]) == 0
    assert "forces" in capsys.readouterr().out
    model = load_model(out)
    assert model.metadata["extra"]["calibration"]["factors"]["forces"] > 0
    assert len(model.members) == 2
    assert float(model.uncertainty_scales[3]) != 1.0
    assert main(["eval", str(out), str(data)]) == 0
    assert "forces_uncertainty" in capsys.readouterr().out
    # one model, an input overwritten, a missing calibration file: one error, exit 2
    assert main(["committee", str(paths[0]), "-o", str(tmp_path / "one.pt")]) == 2
    assert "two or more" in capsys.readouterr().err
    assert main(["committee", *map(str, paths), "-o", str(paths[0])]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main(["committee", *map(str, paths), "-o", str(tmp_path / "c2.pt"),
                 "--calibrate", str(tmp_path / "missing.xyz")]) == 2
    assert "missing.xyz" in capsys.readouterr().err
    assert not (tmp_path / "c2.pt").exists()


def test_training_committee_key_trains_seeds_on_one_split_and_resumes(frames, tmp_path,
                                                                       capsys):
    data = tmp_path / "frames.xyz"
    write_frames(frames, data)
    config = {"data": {"train": str(data), "valid_fraction": 0.25, "test_fraction": 0.25},
              "model": RESPONSE, "output": str(tmp_path / "run"),
              "training": {"max_epochs": 3, "batch_size": 4, "seed": 5}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "train.yaml"), "--no-progress", "--committee",
                 "2"]) == 0
    assert "committee of 2" in capsys.readouterr().out
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [m["epochs"] for m in metrics["members"]] == [3, 3]
    assert metrics["n_test"] == 2 and "forces" in metrics["test"]
    seeds = [json.loads((run / f"member_{k}" / "metrics.json").read_text())["training"]["seed"]
             for k in range(2)]
    assert seeds == [5, 6]  # seed + k: different initial weights and batch order
    # one split for all: member 0 is the single run of the same file (seed 5), and the
    # committee's test frames are those that single run holds out
    single = load_config({**config, "output": str(tmp_path / "single")})
    from fieldforce.training import train
    alone = train(single, progress=False)
    assert alone["test"]["forces"]["rmse"] == pytest.approx(
        metrics["members"][0]["test"]["forces"]["rmse"], rel=1e-9)
    # model.pt is the committee of the two member files: their mean, a calibrated spread
    committee = load_model(run / "model.pt")
    parts = [load_model(run / f"member_{k}" / "model.pt") for k in range(2)]
    batch = collate(frames[:3])
    out = evaluate(committee, batch, field=FIELD, requests={"forces_uncertainty"})
    each = stacked(parts, batch, field=FIELD)
    assert torch.allclose(out["forces"], each["forces"].mean(0), atol=1e-12)
    assert not torch.allclose(each["forces"][0], each["forces"][1], atol=1e-6)
    factor = metrics["calibration"]["forces"]
    assert torch.allclose(out["forces_uncertainty"], factor * each["forces"].std(0),
                          rtol=1e-10, atol=1e-12)
    # again: refused without --resume; with it, the finished members are read back as
    # they were and the committee is rebuilt the same
    assert main(["train", str(tmp_path / "train.yaml"), "--no-progress", "--committee",
                 "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    stamp = (run / "member_0" / "model.pt").stat().st_mtime_ns
    (run / "member_1" / "metrics.json").unlink()  # stopped while member 2 was finishing
    assert main(["train", str(tmp_path / "train.yaml"), "--committee", "2", "--resume"]) == 0
    assert "finished earlier" in capsys.readouterr().out
    assert (run / "member_0" / "model.pt").stat().st_mtime_ns == stamp
    again = json.loads((run / "metrics.json").read_text())
    assert again["test"]["forces"]["rmse"] == pytest.approx(metrics["test"]["forces"]["rmse"],
                                                            rel=1e-9)
    assert main(["train", str(tmp_path / "train.yaml"), "--committee", "0"]) == 2
