"""Training loop: losses, validation, early stopping, learning-rate schedule, checkpoints.

Loss = sum_p w_p <(pred - ref)²>_p / s_p², over the properties p with a weight and
labels; s_p is the standard deviation of the training labels of p (so the
weights are dimensionless); energies are per atom; a frame without a label does
not enter that term.

Born charges (loss term ``born_charges``, models with charges) come from
:func:`fieldforce.models.derivatives.evaluate` with ``create_graph`` so that the
loss differentiates through them; they are computed only when that term is on.

Speed (response model): the lambda-SOAP features of zero-field frames are computed
once and cached (the geometries are fixed and, at zero field, forces depend only on
U0, whose invariant features are recomputed with gradients every step). Frames at
a finite field run the full model, because their forces contain (dmu/dr).E and
1/2 E.(dalpha/dr).E.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from fieldforce.data.atomic import atomic_path, write_json
from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.models import build_model, save_model
from fieldforce.models.backbone import species_of
from fieldforce.models.derivatives import evaluate
from fieldforce.training.config import LOSS_TERMS
from fieldforce.training.evaluation import (
    evaluate_frames,
    format_metrics,
    parity_plots,
)


def load_frames(source: str) -> list[Frame]:
    from fieldforce.data.io import read_frames

    if source.startswith("fieldforce:"):
        from fieldforce.datasets import load_water

        name = source.split(":", 1)[1]
        if name != "water":
            from fieldforce.errors import ConfigError

            raise ConfigError(f"unknown shipped dataset {source!r}; available: fieldforce:water")
        return load_water()
    return read_frames(source)


def split_data(config: dict) -> tuple[list[Frame], list[Frame], list[Frame]]:
    from fieldforce.data.splits import random_split

    data, seed = config["data"], config["training"]["seed"]
    frames = load_frames(data["train"])
    test = []
    if data["test_fraction"] > 0:
        frames, test = random_split(frames, [1 - data["test_fraction"], data["test_fraction"]],
                                    seed=seed + 1)
    if "valid" in data:
        valid = load_frames(data["valid"])
    else:
        frames, valid = random_split(frames, [1 - data["valid_fraction"],
                                              data["valid_fraction"]], seed=seed)
    if not valid:
        from fieldforce.errors import ConfigError

        raise ConfigError("the validation set is empty; raise data.valid_fraction or give "
                          "data.valid")
    return frames, valid, test


def _has_field(frame: Frame) -> bool:
    return bool(np.abs(frame.efield).max() > 0)


class Trainer:
    """Train one model from a validated config (:func:`fieldforce.training.config.load_config`).

    ``data``: (train, valid, test) frames given directly instead of ``config["data"]``.
    """

    def __init__(self, config: dict, progress: bool = True,
                 data: tuple[list[Frame], list[Frame], list[Frame]] | None = None):
        self.config = config
        self.progress = progress
        self.output = Path(config["output"])
        self.output.mkdir(parents=True, exist_ok=True)
        t = config["training"]
        self.weights = {k: v for k, v in t["loss_weights"].items() if v > 0}
        torch.manual_seed(t["seed"])
        random.seed(t["seed"])
        self.train, self.valid, self.test = data if data is not None else split_data(config)
        model_cfg = dict(config["model"])
        model_cfg.setdefault("species", species_of(self.train + self.valid + self.test))
        self.model = build_model(model_cfg)
        self.model.fit_statistics(self.train)
        self.scales = self._label_scales()
        self.terms = [k for k in LOSS_TERMS if k in self.weights and k in self.scales]
        if not self.terms:
            from fieldforce.errors import ConfigError

            raise ConfigError("no loss term has both a positive weight and labels in the "
                              "training data")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t["learning_rate"],
                                          weight_decay=t["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=0.5, patience=t["lr_patience"], min_lr=t["min_learning_rate"])
        # the response model's cached lambda-SOAP features; other families need none
        self.cache = (self._equivariant_cache() if hasattr(self.model, "equivariant_features")
                      else {})
        self.epoch, self.best, self.best_state, self.history = 0, math.inf, None, []
        self.stale = 0

    def _label_scales(self) -> dict[str, float]:
        batch = collate(self.train)
        scales = {}
        for name in LOSS_TERMS:
            if name in batch.labels and batch.label_mask[name].any():
                values = batch.labels[name]
                mask = batch.label_mask[name]
                if name == "energy":
                    values = values / batch.n_atoms_per_structure
                if values.shape[0] != batch.n_structures:
                    mask = mask[batch.structure_index]
                values = values[mask]
                # one value has no spread: leave that term unnormalised
                scales[name] = (float(values.std().clamp_min(1e-6)) if values.numel() > 1
                                else 1.0)
        return scales

    def _equivariant_cache(self) -> dict[int, dict[str, torch.Tensor]]:
        """lambda-SOAP features of every zero-field training frame, by frame id."""
        wanted = [f for f in self.train if not _has_field(f)]
        cache = {}
        for start in range(0, len(wanted), 128):
            chunk = wanted[start:start + 128]
            feats = self.model.equivariant_features(collate(chunk))
            offset = 0
            for f in chunk:
                n = len(f.atoms)
                cache[id(f)] = {k: v[offset:offset + n] for k, v in feats.items()}
                offset += n
        return cache

    # -- one step ------------------------------------------------------------

    def loss(self, frames: list[Frame], train: bool) -> tuple[torch.Tensor, dict]:
        batch = collate(frames)
        kwargs = {}
        if hasattr(self.model, "equivariant_features"):
            cached = None
            if train and all(id(f) in self.cache for f in frames):
                cached = {k: torch.cat([self.cache[id(f)][k] for f in frames])
                          for k in ("vector", "tensor")}
            kwargs = {"equivariant": cached,
                      "response": any(t in self.terms for t in ("dipole", "polarizability"))}
        born = ("born_charges" in self.terms and "born_charges" in batch.labels
                and getattr(self.model, "predicts_charges", False))
        out = evaluate(self.model, batch, forces="forces" in self.terms, born_charges=born,
                       create_graph=train, **kwargs)
        total, parts = 0.0, {}
        n_atoms = batch.n_atoms_per_structure.to(batch.positions.dtype)
        for name in self.terms:
            if name not in batch.labels or name not in out:
                continue
            mask = batch.label_mask[name]
            ref, pred = batch.labels[name], out[name]
            if name == "energy":
                ref, pred = ref / n_atoms, pred / n_atoms
            if ref.shape[0] != batch.n_structures:
                mask = mask[batch.structure_index]
            if not mask.any():
                continue
            mse = ((pred[mask] - ref[mask]) ** 2).mean()
            parts[name] = float(mse.detach().sqrt())
            total = total + self.weights[name] * mse / self.scales[name] ** 2
        return total, parts

    def run_epoch(self) -> float:
        self.model.train()
        # featomic-torch warns that it does not accumulate second derivatives with respect
        # to positions; training on forces needs only d(forces)/d(parameters), which it
        # does give (checked against finite differences of the loss in the tests).
        warnings.filterwarnings("ignore", message="second derivatives with respect to "
                                "positions are not implemented")
        size = self.config["training"]["batch_size"]
        # batches never mix field and zero-field frames, so the cache can be used
        groups = [[f for f in self.train if not _has_field(f)],
                  [f for f in self.train if _has_field(f)]]
        batches = []
        for group in groups:
            order = torch.randperm(len(group)).tolist()
            batches += [[group[i] for i in order[s:s + size]] for s in range(0, len(group), size)]
        random.shuffle(batches)
        losses = []
        for frames in batches:
            self.optimizer.zero_grad()
            loss, _ = self.loss(frames, train=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def validate(self) -> tuple[float, dict]:
        self.model.eval()
        total, parts, count = 0.0, {}, 0
        for start in range(0, len(self.valid), 64):
            chunk = self.valid[start:start + 64]
            loss, p = self.loss(chunk, train=False)
            total += float(loss.detach()) * len(chunk)
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v**2 * len(chunk)
            count += len(chunk)
        return total / count, {k: math.sqrt(v / count) for k, v in parts.items()}

    # -- checkpoints ---------------------------------------------------------

    def checkpoint(self) -> None:
        state = {"epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "best": self.best,
                 "best_state": self.best_state, "history": self.history, "stale": self.stale,
                 "rng": torch.get_rng_state(), "py_rng": random.getstate()}
        with atomic_path(self.output / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def resume(self) -> bool:
        path = self.output / "checkpoint.pt"
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.best_state = state["epoch"], state["best"], state["best_state"]
        self.history, self.stale = state["history"], state["stale"]
        torch.set_rng_state(state["rng"])
        random.setstate(state["py_rng"])
        return True

    # -- the whole run -------------------------------------------------------

    def fit(self) -> dict:
        from tqdm import tqdm

        t = self.config["training"]
        start = time.perf_counter()
        bar = tqdm(total=t["max_epochs"], initial=self.epoch, disable=not self.progress,
                   desc="training", unit="epoch")
        reason = "max_epochs"
        while self.epoch < t["max_epochs"]:
            train_loss = self.run_epoch()
            valid_loss, rmse = self.validate()
            self.epoch += 1
            self.scheduler.step(valid_loss)
            lr = self.optimizer.param_groups[0]["lr"]
            self.history.append({"epoch": self.epoch, "train_loss": train_loss,
                                 "valid_loss": valid_loss, "lr": lr, **{
                                     f"valid_rmse_{k}": v for k, v in rmse.items()}})
            if valid_loss < self.best:
                self.best, self.stale = valid_loss, 0
                self.best_state = {k: v.clone() for k, v in self.model.state_dict().items()}
            else:
                self.stale += 1
            if self.epoch % t["checkpoint_every"] == 0:
                self.checkpoint()
            bar.update(1)
            bar.set_postfix({"loss": f"{valid_loss:.3g}",
                             **{k[:4]: f"{v:.3g}" for k, v in rmse.items()}})
            if self.stale >= t["patience"]:
                reason = "early stopping"
                break
            minutes = t["max_minutes"]
            if minutes is not None and time.perf_counter() - start > 60 * minutes:
                reason = "max_minutes"
                break
        bar.close()
        self.checkpoint()
        return self.finish(reason, time.perf_counter() - start)

    def finish(self, reason: str, seconds: float) -> dict:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        save_model(self.model, self.output / "model.pt",
                   extra={"epochs": self.epoch, "stopped_by": reason})
        valid_table, valid_pairs = evaluate_frames(self.model, self.valid)
        result = {"epochs": self.epoch, "stopped_by": reason, "seconds": seconds,
                  "n_train": len(self.train), "n_valid": len(self.valid),
                  "n_test": len(self.test), "valid": valid_table}
        plots = parity_plots(valid_pairs, self.output, valid_table, prefix="parity_valid")
        if self.test:
            test_table, test_pairs = evaluate_frames(self.model, self.test)
            result["test"] = test_table
            plots += parity_plots(test_pairs, self.output, test_table, prefix="parity_test")
        plots.append(learning_curve(self.history, self.output / "learning_curve.png"))
        result["plots"] = [str(p) for p in plots]
        write_json(result, self.output / "metrics.json")
        return result


def learning_curve(history: list[dict], path: Path) -> Path:
    """Training and validation loss per epoch (log scale), with the learning rate."""
    from matplotlib.figure import Figure

    from fieldforce.training.evaluation import save_figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train loss")
    ax.semilogy(epochs, [h["valid_loss"] for h in history], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weighted loss (dimensionless)")
    twin = ax.twinx()
    twin.semilogy(epochs, [h["lr"] for h in history], "k:", lw=0.8, label="learning rate")
    twin.set_ylabel("learning rate")
    ax.legend(loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def train(config: dict, resume: bool = False, progress: bool = True) -> dict:
    """Train from a validated config; with ``resume`` continue from the last checkpoint."""
    trainer = Trainer(config, progress=progress)
    if resume and not trainer.resume():
        from fieldforce.errors import ConfigError

        raise ConfigError(f"--resume: no checkpoint in {trainer.output}")
    result = trainer.fit()
    result["summary"] = format_metrics(result["valid"], "validation set")
    return result
