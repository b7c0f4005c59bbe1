"""How long a run trains, how fast, and which weights it keeps.

The rules a training run follows, apart from the epoch loop that applies them
(:class:`fieldforce.training.trainer.Trainer`): the optimizer (Adam, or AdamW with a
weight decay on the backbone's matrices), the learning-rate schedule (``cosine`` over the
run's optimizer steps, or ``plateau``), the run's length in optimizer steps, the early
stopping patience, and whether model.pt keeps the best or the last weights. Their
numbers (:data:`PLATEAU_PATIENCE`, :data:`KEEP_LAST_TOLERANCE`) live with the config's
defaults in :mod:`fieldforce.training.config`; what they were measured on is in
BENCHMARKS.md (issue 13).
"""

from __future__ import annotations

import math

import torch

from fieldforce.training.config import KEEP_LAST_TOLERANCE, PLATEAU_PATIENCE


def total_steps(training: dict, steps_per_epoch: int) -> int:
    """The run's optimizer steps: the smaller of ``max_steps`` and ``max_epochs`` epochs of
    ``steps_per_epoch`` steps (``training``: the config's training section)."""
    epochs = training["max_epochs"] * steps_per_epoch
    return min(training["max_steps"], epochs) if training.get("max_steps") else epochs


def patience(training: dict) -> float:
    """Epochs without improvement before early stopping (``training.patience``; by default
    none under the cosine schedule, :data:`PLATEAU_PATIENCE` under plateau)."""
    if training.get("patience") is not None:
        return training["patience"]
    return math.inf if per_step(training) else PLATEAU_PATIENCE


def optimizer(model: torch.nn.Module, learning_rate: float, weight_decay: float):
    """Adam; with ``weight_decay`` > 0 decoupled from the gradient (AdamW: each step shrinks
    a weight by learning_rate x weight_decay of itself) and applied to the backbone's
    weight matrices only. Adam's own L2 term is divided by the gradient's running scale,
    so it regularises the weights with large gradients least. Biases and per-species
    offsets are not pulled toward zero, nor are the family heads: the latent family's
    charge scale, for one, is what energies and forces barely determine, and a decay
    would choose it (zero) instead of the data."""
    if not weight_decay:
        return torch.optim.Adam(model.parameters(), lr=learning_rate)
    decayed, free = [], []
    for name, parameter in model.named_parameters():
        shared = name.startswith("backbone.") and parameter.ndim >= 2
        (decayed if shared else free).append(parameter)
    return torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                              {"params": free, "weight_decay": 0.0}], lr=learning_rate)


def scheduler(adam: torch.optim.Optimizer, training: dict, steps: int):
    """The learning-rate schedule of ``training`` for the optimizer ``adam`` (Adam or
    AdamW, :func:`optimizer`): ``cosine`` decays to
    ``min_learning_rate`` over the run's ``steps`` optimizer steps (stepped per step: the
    schedule is defined in steps, not in epochs); ``plateau`` halves the rate after
    ``lr_patience`` epochs without a better validation loss (stepped per epoch)."""
    if per_step(training):
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            adam, T_max=max(1, steps), eta_min=training["min_learning_rate"])
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        adam, factor=0.5, patience=training["lr_patience"],
        min_lr=training["min_learning_rate"])


def per_step(training: dict) -> bool:
    """Is the schedule stepped after every optimizer step (cosine) rather than after every
    epoch with the validation loss (plateau)?"""
    return training.get("schedule", "plateau") == "cosine"


def kept_state(keep: str, schedule: str, stopped_by: str, best_loss: float,
               last_loss: float) -> str:
    """Which weights a run keeps in model.pt: ``"best"`` (lowest validation loss) or
    ``"last"`` (the end of the run).

    ``keep`` is the training option: ``best``, ``last`` or ``auto``. Under ``auto`` a cosine
    run that ran its schedule to the end (``stopped_by`` max_steps or max_epochs) keeps its
    last weights, annealed to the schedule's floor, unless their validation loss is more
    than :data:`KEEP_LAST_TOLERANCE` above the best (then the run overfitted and the best
    snapshot is its early stop); a run cut short or under the plateau schedule, whose
    early stopping is by the best loss, keeps the best. Why not always the best: with a
    validation set of a few dozen frames the lowest loss falls at a random epoch of the
    schedule's last third, where the learning rate is still a tenth of its start and the
    per-atom energy offset (the energy head's bias, in units of the force spread x 1 Å)
    still moves by tenths of a meV per step.
    """
    if keep in ("best", "last"):
        return keep
    finished = schedule == "cosine" and stopped_by in ("max_steps", "max_epochs")
    if finished and last_loss <= (1.0 + KEEP_LAST_TOLERANCE) * best_loss:
        return "last"
    return "best"


__all__ = ["kept_state", "optimizer", "patience", "per_step", "scheduler",
           "total_steps"]
