"""The training schedule in optimizer steps: cosine decay, max_steps, and resume."""

from __future__ import annotations

import json

import pytest
import torch

from fieldforce.errors import ConfigError
from fieldforce.models import load_model
from fieldforce.training import Trainer, load_config

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"family": "latent", "long_range": False,
        "descriptor": {"cutoff": 3.0, "max_radial": 2, "max_angular": 2}, "hidden": [8]}


def config(tmp_path, name: str, **training) -> dict:
    return load_config({"data": {"train": "unused.xyz"}, "output": str(tmp_path / name),
                        "model": TINY,
                        "training": {"batch_size": 5, "max_epochs": 6, "seed": 3,
                                     "learning_rate": 1e-2, "min_learning_rate": 1e-4,
                                     "patience": 100, "checkpoint_every": 1, **training}})


@pytest.fixture(scope="module")
def frames(water):
    small = [f for f in water if len(f.atoms) <= 6 and not f.efield.any()]
    return small[:20], small[20:25]


def test_cosine_decays_to_the_minimum_over_the_run_in_steps(tmp_path, frames):
    train, valid = frames
    trainer = Trainer(config(tmp_path, "cos", schedule="cosine"), progress=False,
                      data=(train, valid, []))
    assert trainer.steps_per_epoch() == 4 and trainer.total_steps() == 24
    rates = []
    for _ in range(6):
        trainer.run_epoch()
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    assert trainer.steps == 24
    assert rates[-1] == pytest.approx(1e-4, rel=1e-9)  # the end of the cosine
    assert rates[2] == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4), rel=1e-9)  # its middle
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_max_steps_stops_the_run(tmp_path, frames):
    train, valid = frames
    result = Trainer(config(tmp_path, "steps", max_steps=9, max_epochs=50), progress=False,
                     data=(train, valid, [])).fit()
    assert result["stopped_by"] == "max_steps" and result["epochs"] == 3
    assert result["steps"] == 12  # checked at the end of each 4-step epoch


@pytest.mark.parametrize("ema", [None, 0.9])
def test_a_resumed_cosine_run_gives_the_same_model(tmp_path, frames, ema):
    train, valid = frames
    whole = Trainer(config(tmp_path, "whole", schedule="cosine", ema_decay=ema),
                    progress=False, data=(train, valid, []))
    whole.fit()
    first = Trainer(config(tmp_path, "parts", schedule="cosine", max_epochs=6,
                           ema_decay=ema), progress=False, data=(train, valid, []))
    first.config["training"]["max_epochs"] = 3  # stop half way, as an interruption would
    first.fit()
    again = Trainer(config(tmp_path, "parts", schedule="cosine", ema_decay=ema),
                    progress=False, data=(train, valid, []))
    assert again.resume() and again.epoch == 3 and again.steps == 12
    again.fit()
    # the history's wall time goes on from the interrupted run's, never back to zero
    seconds = [h["seconds"] for h in again.history]
    assert len(seconds) == 6 and all(b > a > 0 for a, b in zip(seconds, seconds[1:],
                                                               strict=False))
    a = load_model(tmp_path / "whole" / "model.pt").state_dict()
    b = load_model(tmp_path / "parts" / "model.pt").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_the_moving_average_is_what_is_validated_and_kept(tmp_path, frames):
    """With training.ema_decay the saved model is the exponential moving average of the
    weights along the run (not the last raw weights), recomputed here from the raw
    weights after every step with the stated warm-up; its validation loss is the one
    recorded."""
    train, valid = frames
    trainer = Trainer(config(tmp_path, "ema", schedule="cosine", ema_decay=0.8,
                             max_epochs=2), progress=False, data=(train, valid, []))
    names = [n for n, _ in trainer.model.named_parameters()]
    average = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    last_raw = {}
    step = trainer.optimizer.step

    def step_and_average(*args, **kw):
        out = step(*args, **kw)
        decay = min(0.8, (1.0 + trainer.steps + 1) / (10.0 + trainer.steps + 1))
        for n, p in trainer.model.named_parameters():
            average[n] = decay * average[n] + (1 - decay) * p.detach()
            last_raw[n] = p.detach().clone()
        return out

    trainer.optimizer.step = step_and_average
    trainer.fit()
    saved = load_model(tmp_path / "ema" / "model.pt").state_dict()
    assert trainer.steps == 8
    for n in names:
        torch.testing.assert_close(saved[n], average[n], rtol=1e-12, atol=1e-12, msg=n)
    assert max(float((saved[n] - last_raw[n]).abs().max()) for n in names) > 1e-4
    # the recorded validation loss is the average's
    assert trainer.history[-1]["valid_loss"] == pytest.approx(trainer._validate()[0], rel=1e-9)


def test_keep_auto_takes_a_finished_cosine_runs_last_weights_unless_it_overfitted():
    from fieldforce.training.config import KEEP_LAST_TOLERANCE
    from fieldforce.training.schedule import kept_state

    within, above = 1.0 + 0.5 * KEEP_LAST_TOLERANCE, 1.0 + 2 * KEEP_LAST_TOLERANCE
    assert kept_state("auto", "cosine", "max_steps", 1.0, within) == "last"
    assert kept_state("auto", "cosine", "max_epochs", 1.0, within) == "last"
    assert kept_state("auto", "cosine", "max_steps", 1.0, above) == "best"  # overfitted
    # cut short (the rate not annealed) or the plateau schedule: its early stop
    for schedule, reason in (("cosine", "max_minutes"), ("cosine", "early stopping"),
                             ("plateau", "max_epochs"), ("plateau", "early stopping")):
        assert kept_state("auto", schedule, reason, 1.0, within) == "best"
    assert kept_state("best", "cosine", "max_steps", 1.0, 1.0) == "best"
    assert kept_state("last", "plateau", "early stopping", 1.0, 5.0) == "last"


@pytest.mark.parametrize("keep", ["best", "last"])
def test_the_kept_weights_are_the_best_or_the_last_as_configured(tmp_path, frames, keep):
    """model.pt holds the best-validation state or the run's final weights (the checkpoint
    has both), and metrics.json says which."""
    train, valid = frames
    trainer = Trainer(config(tmp_path, keep, schedule="cosine", keep=keep,
                             learning_rate=0.05), progress=False, data=(train, valid, []))
    result = trainer.fit()
    assert result["kept"] == keep
    checkpoint = torch.load(tmp_path / keep / "checkpoint.pt", weights_only=False)
    losses = [h["valid_loss"] for h in checkpoint["history"]]
    # the case that tells them apart: the best epoch is not the last
    assert min(losses) < losses[-1]
    expected = checkpoint["best_state"] if keep == "best" else checkpoint["model"]
    other = checkpoint["model"] if keep == "best" else checkpoint["best_state"]
    saved = load_model(tmp_path / keep / "model.pt").state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(saved[k], other[k]) for k in expected)


def test_ema_decay_out_of_range_is_one_clear_error():
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config({"data": {"train": "unused.xyz"}, "output": "unused", "model": TINY,
                     "training": {"ema_decay": 1.0}})


def test_weight_decay_is_decoupled_and_shrinks_only_the_backbone_matrices(tmp_path, frames):
    train, valid = frames
    settings = config(tmp_path, "wd", weight_decay=0.5, learning_rate=0.1)
    settings["model"]["long_range"] = True  # a charge head beside the backbone
    trainer = Trainer(settings, progress=False, data=(train, valid, []))
    named = dict(trainer.model.named_parameters())
    before = {k: v.detach().clone() for k, v in named.items()}
    # a step with zero gradients: Adam's update is zero, only the decay acts (coupled L2
    # in Adam would divide it by the gradient scale: a step of lr whatever the weight)
    trainer.optimizer.zero_grad()
    for p in named.values():
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    matrices = [k for k, v in named.items() if v.ndim >= 2 and k.startswith("backbone.")]
    others = [k for k in named if k not in matrices]
    # the latent family's charge head is a matrix outside the backbone: not decayed
    assert matrices and "charge_head.weight" in others and "backbone.networks.0.0.bias" in others
    for k in matrices:
        torch.testing.assert_close(named[k].detach(), before[k] * (1 - 0.1 * 0.5))
    for k in others:
        assert torch.equal(named[k].detach(), before[k])


def test_resuming_with_another_weight_decay_regime_is_one_clear_error(tmp_path, frames):
    train, valid = frames
    first = Trainer(config(tmp_path, "wd0", weight_decay=0.0, max_epochs=1),
                    progress=False, data=(train, valid, []))
    first.fit()
    # the run records the settings it used, defaults filled in
    used = json.loads((tmp_path / "wd0" / "metrics.json").read_text())["training"]
    assert used["weight_decay"] == 0.0 and used["schedule"] == "cosine"
    saved = torch.load(tmp_path / "wd0" / "model.pt", weights_only=False)
    assert saved["extra"]["training"] == used
    again = Trainer(config(tmp_path, "wd0", weight_decay=0.1, max_epochs=2),
                    progress=False, data=(train, valid, []))
    with pytest.raises(ConfigError, match=r"checkpoint.pt: .*weight_decay 0 and this run has 0.1"):
        again.resume()
    # another value of the same regime, or another learning rate, would be overridden by
    # the optimizer state torch restores: refused as well, naming the setting
    decayed = Trainer(config(tmp_path, "wd1", weight_decay=0.1, max_epochs=1),
                      progress=False, data=(train, valid, []))
    decayed.fit()
    for key, value in (("weight_decay", 0.2), ("learning_rate", 0.5)):
        again = Trainer(config(tmp_path, "wd1", max_epochs=2, **{"weight_decay": 0.1,
                                                                 key: value}),
                        progress=False, data=(train, valid, []))
        with pytest.raises(ConfigError, match=rf"training.{key} .* this run has {value:g}"):
            again.resume()
    same = Trainer(config(tmp_path, "wd1", weight_decay=0.1, max_epochs=2),
                   progress=False, data=(train, valid, []))
    assert same.resume() and same.epoch == 1


def test_resuming_with_another_descriptor_is_one_clear_error(tmp_path, frames):
    """A descriptor setting changes the features, not a weight's shape: the checkpoint's
    model configuration is compared key by key, and a difference named."""
    train, valid = frames
    Trainer(config(tmp_path, "run", max_epochs=1), progress=False,
            data=(train, valid, [])).fit()
    changed = load_config({"data": {"train": "unused.xyz"}, "output": str(tmp_path / "run"),
                           "model": {**TINY, "descriptor": {**TINY["descriptor"],
                                                            "radial_scaling": [3.0, 6]}},
                           "training": {"batch_size": 5, "max_epochs": 2, "seed": 3,
                                        "learning_rate": 1e-2, "min_learning_rate": 1e-4,
                                        "patience": 100, "checkpoint_every": 1}})
    again = Trainer(changed, progress=False, data=(train, valid, []))
    with pytest.raises(ConfigError, match=r"model\.descriptor\.radial_scaling none "
                                          r"\(this run: \[3\.0, 6\.0\]\)"):
        again.resume()
    same = Trainer(config(tmp_path, "run", max_epochs=2), progress=False,
                   data=(train, valid, []))
    assert same.resume() and same.epoch == 1


@pytest.mark.parametrize("stop", ["max_steps", "early stopping"])
def test_resuming_a_finished_run_trains_no_further(tmp_path, frames, stop):
    """``--resume`` on a run that has already stopped (a rerun of the same command) must
    give back the same model, not one more epoch: the stop is tested before training."""
    train, valid = frames
    options = ({"max_steps": 9, "max_epochs": 50} if stop == "max_steps" else
               {"patience": 1, "max_epochs": 50, "learning_rate": 0.5})
    first = Trainer(config(tmp_path, "done", **options), progress=False,
                    data=(train, valid, []))
    result = first.fit()
    assert result["stopped_by"] == stop
    kept = load_model(tmp_path / "done" / "model.pt").state_dict()
    again = Trainer(config(tmp_path, "done", **options), progress=False,
                    data=(train, valid, []))
    assert again.resume()
    rerun = again.fit()
    assert (rerun["stopped_by"], rerun["epochs"], again.steps) == (
        stop, result["epochs"], first.steps)
    now = load_model(tmp_path / "done" / "model.pt").state_dict()
    for key in kept:
        torch.testing.assert_close(now[key], kept[key], rtol=0, atol=0, msg=key)
