"""The training configuration file (YAML): data, model, training, output.

::

    data:
      train: train_spec.yaml     # a data spec, a canonical extxyz, or "fieldforce:water"
      valid_fraction: 0.1        # or  valid: other_spec.yaml
      test_fraction: 0.0         # held out, scored at the end (optional)
    model:
      family: response           # or latent; see DEFAULTS in fieldforce.models.response
                                 # and fieldforce.models.latent
    training:
      seed: 0
      max_epochs: 500
      loss_weights: {energy: 1.0, forces: 10.0, dipole: 10.0, polarizability: 10.0}
    output: runs/water

Paths are relative to the configuration file. Every unknown key is an error.

Loss terms (:data:`LOSS_TERMS`): energy, forces, dipole, polarizability, charges,
born_charges, polarization; a term is on when its weight is positive and the
training data have its labels (and the model predicts it). Without
``loss_weights`` the family's defaults apply (:data:`DEFAULT_LOSS_WEIGHTS`): the
latent-charge model learns from energies and forces only, its charges staying
latent; give ``dipole``, ``charges``, ``born_charges`` or ``polarization`` weights to
train them on those labels too (``polarization`` compares on the default branch,
phases in [-pi, pi), so the labels must be on it).
"""

from __future__ import annotations

import copy
from pathlib import Path

from fieldforce.data.spec import read_yaml
from fieldforce.errors import ConfigError

TRAINING_DEFAULTS = {
    "seed": 0,
    "max_epochs": 500,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "weight_decay": 0.0,
    "loss_weights": None,  # default: DEFAULT_LOSS_WEIGHTS of the model family
    "patience": 60,  # epochs without validation improvement before stopping
    "lr_patience": 15,  # epochs without improvement before halving the learning rate
    "min_learning_rate": 1e-5,
    "checkpoint_every": 5,
    "max_minutes": None,  # wall-time limit; the best model so far is kept
}
DATA_KEYS = {"train", "valid", "valid_fraction", "test_fraction"}
TOP_KEYS = {"data", "model", "training", "output"}
LOSS_TERMS = ("energy", "forces", "dipole", "polarizability", "charges", "born_charges",
              "polarization")
#: loss weights of each model family when the configuration gives none.
DEFAULT_LOSS_WEIGHTS = {
    "response": {"energy": 1.0, "forces": 10.0, "dipole": 10.0, "polarizability": 10.0},
    "latent": {"energy": 1.0, "forces": 10.0},
}


def _check_keys(section: dict, allowed, where: str, path) -> None:
    unknown = set(section) - set(allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} in {where}; expected "
                          f"some of {sorted(allowed)}")


def load_config(source: str | Path | dict) -> dict:
    """Read and validate a training config; returns it with defaults and absolute paths."""
    if isinstance(source, dict):
        raw, path, base = copy.deepcopy(source), "<config>", Path.cwd()
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"{path}: no such configuration file")
        raw = read_yaml(path, "training configuration")
        base = path.resolve().parent
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {sorted(TOP_KEYS)}")
    _check_keys(raw, TOP_KEYS, "the top level", path)
    for key in ("data", "output"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    data = dict(raw["data"] or {})
    _check_keys(data, DATA_KEYS, "data", path)
    if "train" not in data:
        raise ConfigError(f"{path}: missing key 'data.train' (a data spec or extxyz path)")
    for key in ("train", "valid"):
        if key in data and not str(data[key]).startswith("fieldforce:"):
            data[key] = str((base / str(data[key])).resolve())
    data.setdefault("valid_fraction", 0.1 if "valid" not in data else 0.0)
    data.setdefault("test_fraction", 0.0)
    for key in ("valid_fraction", "test_fraction"):
        value = data[key]
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"{path}: data.{key} must be a number in [0, 1), got {value!r}")
    training = dict(raw.get("training") or {})
    _check_keys(training, TRAINING_DEFAULTS, "training", path)
    merged = copy.deepcopy(TRAINING_DEFAULTS)
    model = dict(raw.get("model") or {})
    from fieldforce.models import model_config

    try:
        family = model_config({**model, "species": model.get("species") or [1]})["family"]
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    merged["loss_weights"] = dict(DEFAULT_LOSS_WEIGHTS[family])
    if training.get("loss_weights") is not None:
        weights = training.pop("loss_weights") or {}
        _check_keys(weights, LOSS_TERMS, "training.loss_weights", path)
        for name, w in weights.items():
            if not isinstance(w, (int, float)) or w < 0:
                raise ConfigError(f"{path}: training.loss_weights.{name} must be >= 0, "
                                  f"got {w!r}")
        merged["loss_weights"] = {k: float(v) for k, v in weights.items()}
    training.pop("loss_weights", None)
    merged.update(training)
    for key in ("max_epochs", "batch_size", "checkpoint_every", "patience", "lr_patience"):
        if not isinstance(merged[key], int) or merged[key] < 1:
            raise ConfigError(f"{path}: training.{key} must be a positive integer, "
                              f"got {merged[key]!r}")
    return {"data": data, "model": model, "training": merged,
            "output": str((base / str(raw["output"])).resolve()), "source": str(path)}
