"""Checkpoints of a gradient training run: what to save, and resuming only what it was.

A checkpoint holds everything the next epoch depends on (weights, optimizer and
schedule state, the best state so far, the history, the moving average of the weights,
both random generators), so an interrupted run resumed from it continues exactly as an
uninterrupted one. It also holds the resolved training settings it was written with:
the optimizer and scheduler states carry their own hyper-parameters, and torch restores
them silently, so a resume under other values of those settings would quietly train
with the old ones. That is refused, naming the setting (:data:`RESTORED_SETTINGS`). So is
a resume whose model is not the one the checkpoint's weights belong to, key by key of
the resolved ``model:`` section (a descriptor setting changes the features without
changing any weight's shape, e.g. a run configuration that leaves the cutoff to a
default that has since changed).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import torch

from fieldforce.data.atomic import atomic_path
from fieldforce.errors import ConfigError

if TYPE_CHECKING:
    from fieldforce.training.trainer import Trainer

#: training settings that the restored optimizer / scheduler / averages would override
RESTORED_SETTINGS = ("learning_rate", "weight_decay", "schedule", "min_learning_rate",
                     "max_steps", "ema_decay")


def _format(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def save_checkpoint(trainer: Trainer) -> None:
    """Write ``checkpoint.pt`` in the run's output directory (atomically)."""
    training = trainer.config["training"]
    state = {"epoch": trainer.epoch, "model": trainer.model.state_dict(),
             "optimizer": trainer.optimizer.state_dict(),
             "scheduler": trainer.scheduler.state_dict(), "best": trainer.best,
             "steps": trainer.steps, "best_state": trainer.best_state,
             "history": trainer.history, "stale": trainer.stale, "ema": trainer.ema,
             "settings": {k: training.get(k) for k in RESTORED_SETTINGS},
             "model_config": trainer.model.config,
             "rng": torch.get_rng_state(), "py_rng": random.getstate()}
    with atomic_path(trainer.output / "checkpoint.pt") as tmp:
        torch.save(state, tmp)


def _check_settings(trainer: Trainer, state: dict, path) -> None:
    """ConfigError if this run's settings differ from those the checkpoint restores."""
    training = trainer.config["training"]
    saved = state.get("settings")
    if saved is None:
        # written before checkpoints kept their settings: the weight-decay regime can
        # still be read off the optimizer's parameter groups (one: Adam without decay)
        groups = state["optimizer"]["param_groups"]
        saved = {"weight_decay": 0.0 if len(groups) == 1 else groups[0]["weight_decay"]}
    for key, value in saved.items():
        if key == "max_steps" and training.get("schedule") != "cosine":
            continue  # only the cosine schedule's length is restored state
        now = training.get(key)
        if now != value and not (isinstance(now, float) and isinstance(value, float)
                                 and abs(now - value) <= 1e-12 * max(abs(now), abs(value))):
            raise ConfigError(f"{path}: the checkpoint was written with training.{key} "
                              f"{_format(value)} and this run has {_format(now)}; resume "
                              "with the same settings")


def _differences(saved: Any, now: Any, prefix: str) -> list[str]:
    """Dotted keys where two resolved configuration dicts differ."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) | set(now), key=str)
                for d in _differences(saved.get(key), now.get(key), f"{prefix}.{key}")]
    return [] if saved == now else [f"{prefix} {_format(saved)} (this run: {_format(now)})"]


def _check_model(trainer: Trainer, state: dict, path) -> None:
    """ConfigError if this run's model is configured otherwise than the checkpoint's."""
    saved = state.get("model_config")
    if saved is None:  # written before checkpoints kept the model's configuration
        return
    changed = _differences(saved, trainer.model.config, "model")
    if changed:
        raise ConfigError(f"{path}: the checkpoint's model was built with "
                          f"{'; '.join(changed[:3])}; resume with the same model settings")


def restore_checkpoint(trainer: Trainer) -> bool:
    """Load ``checkpoint.pt`` into ``trainer``; False if there is none (or the family is
    fitted in closed form). A checkpoint of other settings is one ConfigError."""
    path = trainer.output / "checkpoint.pt"
    if not trainer.gradient or not path.exists():
        return False
    try:
        state = torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 - a checkpoint is written atomically; still, say so
        raise ConfigError(f"{path}: the checkpoint cannot be read (corrupted?); remove it "
                          "and train with --overwrite") from None
    _check_settings(trainer, state, path)
    _check_model(trainer, state, path)
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.epoch, trainer.best = state["epoch"], state["best"]
    trainer.best_state, trainer.history = state["best_state"], state["history"]
    trainer.stale, trainer.steps = state["stale"], state.get("steps", 0)
    if trainer.ema is not None:
        if state.get("ema") is None:
            raise ConfigError(f"{path}: the checkpoint was written without "
                              "training.ema_decay; resume with the same settings")
        trainer.ema = state["ema"]
    torch.set_rng_state(state["rng"])
    random.setstate(state["py_rng"])
    return True


__all__ = ["RESTORED_SETTINGS", "restore_checkpoint", "save_checkpoint"]
