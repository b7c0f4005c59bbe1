"""The training configuration file (YAML): data, model, training, output.

::

    data:
      train: train_spec.yaml     # a data spec, a canonical extxyz, or "fieldforce:water"
      valid_fraction: 0.1        # or  valid: other_spec.yaml
      test_fraction: 0.0         # held out, scored at the end (optional)
      select: {system: Cu(100)}  # only frames with these info values (optional)
      test_select: {relaxed: true}  # these frames are test frames (optional)
    model:
      family: response           # any registered family; its keys: fieldforce config model
    training:
      seed: 0
      max_steps: 10000           # optimizer steps (cosine learning-rate decay over them)
      committee: 1               # K > 1: K seeds on one split, saved as one committee
      loss_weights: {energy: 1.0, forces: 100.0, dipole: 100.0, polarizability: 100.0}
    output: runs/water

Paths are relative to the configuration file. Every section is a
:class:`~fieldforce.config.Section` (:class:`DataSettings`, :class:`TrainingSettings`, the
family's settings class for ``model``), so every key is checked, with its defaults
documented there (``fieldforce config training`` prints them).

Loss terms (:data:`~fieldforce.data.labels.LOSS_TERMS`): energy, forces, dipole,
polarizability, charges, born_charges, polarization; a term is on when its weight is
positive and the training data have its labels (and the model predicts it). Without
``loss_weights`` the family's ``default_loss_weights`` apply: the latent-charge model
learns from energies and forces only, its charges staying latent; give ``dipole``,
``charges``, ``born_charges`` or ``polarization`` weights to train them on those labels
too (``polarization`` compares on the default branch, phases in [-pi, pi), so the labels
must be on it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fieldforce.config import Section, check_keys, option
from fieldforce.config_files import read_mapping
from fieldforce.data.labels import LOSS_TERMS

#: sources that name a dataset shipped with the package instead of a file
SHIPPED_PREFIX = "fieldforce:"


def _selection(select: dict) -> bool:
    """``data.select``: info keys mapped to a string, number or boolean, or a non-empty list
    of them."""
    def scalar(v: Any) -> bool:
        return isinstance(v, (str, int, float))

    return all(isinstance(key, str) and (scalar(value) or (
        isinstance(value, list) and value and all(scalar(v) for v in value)))
        for key, value in select.items())


@dataclass(kw_only=True)
class DataSettings(Section):
    """The ``data:`` section: where the training, validation and test frames come from."""

    section: ClassVar[str] = "data"
    train: str = option(doc="a data spec, a canonical extxyz, or fieldforce:water")
    valid: str | None = option(None, "a separate validation set (else valid_fraction of "
                               "train)")
    valid_fraction: float | None = option(None, "fraction of train held out for validation "
                                          "(default 0.1, or 0 with valid)", minimum=0,
                                          exclusive_maximum=1)
    test_fraction: float = option(0.0, "fraction held out as a test set, scored at the end",
                                  minimum=0, exclusive_maximum=1)
    select: dict[str, Any] | None = option(
        None, "keep only the frames whose info entries take these values, before any "
        "split (e.g. {system: [Cu(100), Cu(111)]}); null: every frame",
        expected="a mapping of info key -> value or list of values", check=_selection)
    test_select: dict[str, Any] | None = option(
        None, "frames (after select) whose info entries take these values are test frames, "
        "never trained on, before test_fraction draws more (e.g. {relaxed: true}: the "
        "states a barrier runs between); null: none",
        expected="a mapping of info key -> value or list of values", check=_selection)

    def check(self) -> None:
        if self.valid_fraction is None:
            self.valid_fraction = 0.0 if self.valid is not None else 0.1


#: early-stopping patience (epochs) of the plateau schedule when none is given
PLATEAU_PATIENCE = 60
#: ``keep: auto`` keeps the last weights of a finished cosine run unless their validation
#: loss exceeds the best one's by more than this fraction. Measured (BENCHMARKS, "Which
#: weights a cosine run keeps"): the last/best ratio is 1.00-1.14 where the last weights
#: are as good or better on test data (water clusters, the demo's task, liquid water,
#: BaTiO3), 1.23-1.62 where the last forces are 0.1-8 % worse (87 DES370K dimers) and
#: 2-35 where the run overfitted and the best snapshot is far better (the latent model on
#: those dimers). Near the threshold the two states differ little on test data; far from
#: it the rule is right.
KEEP_LAST_TOLERANCE = 0.2


@dataclass(kw_only=True)
class TrainingSettings(Section):
    """The ``training:`` section: optimiser, schedule, stopping, checkpoints, loss weights."""

    section: ClassVar[str] = "training"
    seed: int = option(0, "seed of the split, the initial weights and the batch order")
    committee: int = option(1, "train this many members (seeds seed, seed + 1, ...; one "
                            "split) and save their committee: mean and calibrated spread "
                            "(fieldforce.training.committee); 1: one model", minimum=1)
    max_epochs: int = option(5000, "upper limit on training epochs", minimum=1)
    max_steps: int | None = option(10000, "upper limit on optimizer steps (checked after "
                                   "each epoch; null: max_epochs decides); the cosine "
                                   "schedule decays over the smaller of the two", minimum=1)
    batch_size: int = option(16, "structures per optimizer step", minimum=1)
    learning_rate: float = option(3e-3, "initial Adam learning rate", exclusive_minimum=0)
    weight_decay: float = option(0.03, "decoupled weight decay of the backbone's weight "
                                 "matrices (AdamW; per step each shrinks by learning_rate "
                                 "x this; heads and biases are not decayed)", minimum=0)
    ema_decay: float | None = option(None, "validate and keep an exponential moving average "
                                     "of the weights, updated every optimizer step with "
                                     "this decay (e.g. 0.99); null: the raw weights",
                                     minimum=0, exclusive_maximum=1)
    loss_weights: dict[str, float] | None = option(
        None, "weight per loss term (dimensionless: each term is divided by its label "
        "spread); default: the model family's", expected="a mapping of loss term -> weight")
    patience: int | None = option(None, "epochs without validation improvement before "
                                  "stopping (null: never under the cosine schedule, whose "
                                  f"rate decays to the end of the run; {PLATEAU_PATIENCE} "
                                  "under plateau)", minimum=1)
    schedule: str = option("cosine", "learning-rate schedule: plateau (halve after "
                           "lr_patience epochs without improvement) or cosine (decay to "
                           "min_learning_rate over max_steps, or max_epochs, optimizer "
                           "steps)", choices=("plateau", "cosine"))
    lr_patience: int = option(15, "epochs without improvement before halving the learning "
                              "rate", minimum=1)
    min_learning_rate: float = option(1e-5, "the learning rate's floor (cosine: its value at "
                                      "the last step; plateau: not halved below it)",
                                      minimum=0)
    checkpoint_every: int = option(5, "epochs between checkpoints (--resume)", minimum=1)
    max_minutes: float | None = option(None, "wall-time limit; the best model so far is "
                                       "kept", exclusive_minimum=0)
    keep: str = option("auto", "the weights model.pt holds: best (lowest validation loss), "
                       "last (the end of the run), or auto: the last of a cosine run that "
                       "ran to its end unless their validation loss is more than "
                       f"{100 * KEEP_LAST_TOLERANCE:g} % above the best (overfitting), else "
                       "the best",
                       choices=("auto", "best", "last"))
    missing_labels: str = option("error", "a weighted loss term without labels in the "
                                 "training data (or that the model does not predict): "
                                 "error, or warn and train without it",
                                 choices=("error", "warn"))
    unused_labels: str = option("ignore", "labels of properties no loss term uses: "
                                "ignore (they do not touch the model), or statistics (they "
                                "may set data-dependent constants, e.g. the latent model's "
                                "charge unit from Born charges)",
                                choices=("ignore", "statistics"))

    def check(self) -> None:
        if self.loss_weights is None:
            return
        source, prefix = self.where()
        check_keys(self.loss_weights, LOSS_TERMS, source=source,
                   section=f"{prefix}.loss_weights")
        for name, weight in self.loss_weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise self.invalid("loss_weights", f"a weight >= 0 for {name!r}")
        self.loss_weights = {k: float(v) for k, v in self.loss_weights.items()}


@dataclass(kw_only=True)
class TrainConfig(Section):
    """A whole training file: the four sections above (``model`` per family)."""

    data: DataSettings = option(doc="training, validation and test data")
    model: dict[str, Any] = option(default_factory=dict,
                                   doc="the model family and its settings")
    training: TrainingSettings = option(default_factory=TrainingSettings,
                                        doc="optimiser, schedule, loss weights")
    output: Path = option(doc="output directory (model.pt, metrics.json, plots)")


def load_config(source: str | Path | dict) -> dict:
    """Read and check a training config; returns it with defaults and absolute paths.

    The result is a plain mapping ``{data, model, training, output, source}``;
    ``training.loss_weights`` is filled in from the model family when not given.
    """
    from fieldforce.models.contract import family_class, model_settings

    if isinstance(source, dict):
        raw, where, base = copy.deepcopy(source), "<config>", Path.cwd()
    else:
        where = str(source)
        raw = read_mapping(source, "training configuration")
        base = Path(source).resolve().parent
    config = TrainConfig.from_dict(raw, source=where)
    model = model_settings(config.model, source=where)
    data = config.data.to_dict()
    for key in ("train", "valid"):
        if data[key] is not None and not data[key].startswith(SHIPPED_PREFIX):
            data[key] = str((base / data[key]).resolve())
    if data["valid"] is None:
        del data["valid"]
    training = config.training.to_dict()
    if training["loss_weights"] is None:
        training["loss_weights"] = dict(family_class(model.family, head=model.head)
                                          .default_loss_weights)
    return {"data": data, "model": dict(config.model), "training": training,
            "output": str((base / config.output).resolve()), "source": where}


__all__ = ["DataSettings", "TrainConfig", "TrainingSettings", "load_config"]
