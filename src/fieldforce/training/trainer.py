"""The training loop: epochs, validation, early stopping, checkpoints, the finished model.

One loop for every model family, driven by what the family declares
(:mod:`fieldforce.models.contract`): the loss terms are the canonical labels that the
model's outputs can be compared with and that the training data have (with a positive
weight; losses in :mod:`fieldforce.training.losses`); Born charges are computed, with
``create_graph`` so the loss differentiates through them, only when that term is on; a
family's own per-run cache and forward options come from its ``prepare_training`` and
``training_options`` (the families on the backbone cache featomic's density of the
fixed training geometries with its position gradient there,
:class:`~fieldforce.descriptors.FixedDensity`); a family with
``fitting = "closed_form"`` is fitted by one call of its ``fit`` instead of epochs. At
the end: ``model.pt``, ``metrics.json``, parity plots and the learning curve
(:mod:`fieldforce.training.plots`). The rules the loop follows (optimizer, schedule, run
length, patience, which weights are kept) are in :mod:`fieldforce.training.schedule`;
the checks before a run writes anything in :mod:`fieldforce.training.outputs`.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from fieldforce.data.atomic import write_json
from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.data.labels import LOSS_TERMS
from fieldforce.errors import ConfigError
from fieldforce.models import build_model, family_class, save_model
from fieldforce.models.backbone import species_of
from fieldforce.models.derivatives import evaluate
from fieldforce.training import schedule
from fieldforce.training.checkpoints import restore_checkpoint, save_checkpoint
from fieldforce.training.evaluation import format_metrics, score_held_out
from fieldforce.training.losses import label_scales, weighted_loss
from fieldforce.training.outputs import OUTPUT_FILES, check_outputs, make_output_directory
from fieldforce.training.plots import learning_curve
from fieldforce.training.sources import split_data


def _has_field(frame: Frame) -> bool:
    return bool(np.abs(frame.efield).max() > 0)


def _only_labels(frames, terms) -> list:
    """Copies of ``frames`` holding only the labels of ``terms`` and the conditions (the
    field, the net charge: inputs, not targets)."""
    from fieldforce.data.frame import Frame
    from fieldforce.data.labels import LABELS

    keep = set(terms)
    return [Frame(f.atoms, {k: v for k, v in f.labels.items()
                            if k in keep or LABELS[k].role == "condition"},
                  f.source, f.index) for f in frames]


class Trainer:
    """Train one model from a checked config (:func:`fieldforce.training.config.load_config`).

    ``data``: (train, valid, test) frames given directly instead of ``config["data"]``.
    """

    def __init__(self, config: dict, progress: bool = True,
                 data: tuple[list[Frame], list[Frame], list[Frame]] | None = None):
        self.config = config
        self.progress = progress
        self.output = Path(config["output"])
        t = config["training"]
        self.weights = {k: v for k, v in t["loss_weights"].items() if v > 0}
        torch.manual_seed(t["seed"])
        random.seed(t["seed"])
        self.train, self.valid, self.test = data if data is not None else split_data(config)
        model_cfg = dict(config["model"])
        cls = family_class(model_cfg.get("family", "response"), head=model_cfg.get("head"))
        if "species" in cls.settings_class.keys():
            # a family that resolves species gets those of the data unless it names them
            model_cfg.setdefault("species", species_of(self.train + self.valid + self.test))
        self.model = build_model(model_cfg)
        self.scales = label_scales(self.train)
        self.terms = self._loss_terms(t.get("missing_labels", "error"))
        # labels no loss term uses touch the model only when the config says so
        statistics = (self.train if t.get("unused_labels", "ignore") == "statistics"
                      else _only_labels(self.train, self.terms))
        self.model.fit_statistics(statistics)
        self.model.record_domain(statistics)
        self.gradient = self.model.fitting == "gradient"
        if self.gradient:
            self.optimizer = schedule.optimizer(self.model, t["learning_rate"],
                                                t["weight_decay"])
            self.scheduler = schedule.scheduler(self.optimizer, t, self.total_steps())
        self.cache = self.model.prepare_training(self.train)
        # an exponential moving average of the weights (training.ema_decay): the raw
        # weights keep being optimised, the averaged ones are validated and kept
        self.ema_decay = t.get("ema_decay") if self.gradient else None
        self.ema = ({k: v.detach().clone() for k, v in self.model.named_parameters()}
                    if self.ema_decay else None)
        self.epoch, self.best, self.best_state, self.history = 0, math.inf, None, []
        self.stale, self.steps = 0, 0
        self.per_step_schedule = schedule.per_step(t)
        make_output_directory(self.output)

    def _loss_terms(self, missing: str) -> list[str]:
        """The weighted terms the model predicts and the training frames label.

        A weighted term without either is an error (``training.missing_labels: warn``
        makes it a warning and trains without it): a response model trained without
        dipole labels would run MD with untrained field heads.
        """
        produced = self.model.trainable_labels()
        source = _source_of(self.config, self.train)
        for name in self.weights:
            if name not in produced:
                reason = (f"the {self.model.family!r} model does not predict {name} (it "
                          f"predicts {', '.join(sorted(produced))})")
            elif name not in self.scales:
                reason = f"no training frame of {source} has {name} labels"
            else:
                continue
            message = (f"training.loss_weights.{name} is {self.weights[name]:g}, but "
                       f"{reason}; set its weight to 0 or give data with {name} labels")
            if missing == "warn":
                warnings.warn(message + " (training without it)", stacklevel=3)
            else:
                raise ConfigError(message + " (training.missing_labels: warn trains "
                                  "without it)")
        terms = [k for k in LOSS_TERMS if k in self.weights and k in self.scales
                 and k in produced]
        if not terms:
            raise ConfigError(f"no loss term has both a positive weight and labels in "
                              f"{source}")
        return terms

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch (batches never mix field and zero-field frames)."""
        size = self.config["training"]["batch_size"]
        fields = sum(_has_field(f) for f in self.train)
        return math.ceil(fields / size) + math.ceil((len(self.train) - fields) / size)

    def total_steps(self) -> int:
        """The run's optimizer steps (:func:`fieldforce.training.schedule.total_steps`)."""
        return schedule.total_steps(self.config["training"], self.steps_per_epoch())

    # -- one step ------------------------------------------------------------

    def loss(self, frames: list[Frame], train: bool) -> tuple[torch.Tensor, dict]:
        batch = collate(frames)
        options = self.model.training_options(frames, self.terms, self.cache, train)
        born = ("born_charges" in self.terms and "born_charges" in batch.labels
                and self.model.has_charges)
        out = evaluate(self.model, batch, forces="forces" in self.terms, born_charges=born,
                       create_graph=train, **options)
        return weighted_loss(batch, out, self.terms, self.weights, self.scales)

    def run_epoch(self) -> float:
        self.model.train()
        # featomic-torch warns that it does not accumulate second derivatives with respect
        # to positions; training on forces needs only d(forces)/d(parameters), which it
        # does give (checked against finite differences of the loss in the tests).
        warnings.filterwarnings("ignore", message="second derivatives with respect to "
                                "positions are not implemented")
        size = self.config["training"]["batch_size"]
        # batches never mix field and zero-field frames (once needed by a cache of
        # zero-field features; kept, so that the batches and results stay as they were)
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
            self.steps += 1
            if self.ema is not None:
                self._update_ema()
            if self.per_step_schedule:
                self.scheduler.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def _update_ema(self) -> None:
        # the average's warm-up (as in TensorFlow's): decay min(d, (1 + n) / (10 + n)),
        # so the first steps' random weights do not linger in it
        decay = min(self.ema_decay, (1.0 + self.steps) / (10.0 + self.steps))
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                self.ema[name].mul_(decay).add_(p.detach(), alpha=1.0 - decay)

    def _swap_ema(self) -> None:
        """Exchange the model's weights with the moving average (twice: back again)."""
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                raw = p.detach().clone()
                p.copy_(self.ema[name])
                self.ema[name] = raw

    def validate(self) -> tuple[float, dict]:
        """Validation loss and RMSE per term, of the moving average where there is one."""
        if self.ema is not None:
            self._swap_ema()
            try:
                return self._validate()
            finally:
                self._swap_ema()
        return self._validate()

    def _validate(self) -> tuple[float, dict]:
        self.model.eval()
        total, parts, count = 0.0, {}, 0
        for start in range(0, len(self.valid), 64):
            chunk = self.valid[start:start + 64]
            loss, p = self.loss(chunk, train=False)
            total += float(loss.detach() if torch.is_tensor(loss) else loss) * len(chunk)
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v**2 * len(chunk)
            count += len(chunk)
        return total / count, {k: math.sqrt(v / count) for k, v in parts.items()}

    # -- checkpoints ---------------------------------------------------------

    def checkpoint(self) -> None:
        """Write ``checkpoint.pt`` (:func:`~fieldforce.training.checkpoints.save_checkpoint`)."""
        save_checkpoint(self)

    def resume(self) -> bool:
        """Continue from ``checkpoint.pt`` if there is one (same settings, or ConfigError)."""
        return restore_checkpoint(self)

    # -- the whole run -------------------------------------------------------

    def _stop_reason(self) -> str | None:
        """Why the run is over ("early stopping", "max_steps"), or None to go on."""
        t = self.config["training"]
        if self.stale >= schedule.patience(t):
            return "early stopping"
        if t.get("max_steps") and self.steps >= t["max_steps"]:
            return "max_steps"
        return None

    def fit(self) -> dict:
        """Train (epochs, or the family's closed-form fit); then :meth:`finish`."""
        if not self.gradient:
            start = time.perf_counter()
            info = self.model.fit(self.train, {k: self.weights[k] for k in self.terms})
            if self.valid:  # uncertainties scaled to the validation errors (stated)
                scales = self.model.calibrate(self.valid)
                if scales:
                    info["uncertainty_scales_from_validation"] = scales
            return self.finish("closed-form fit", time.perf_counter() - start, info)
        from tqdm import tqdm

        t = self.config["training"]
        start = time.perf_counter()
        # the epochs the run will take: max_steps usually ends it before max_epochs
        epochs = min(t["max_epochs"], math.ceil(self.total_steps() / self.steps_per_epoch()))
        bar = tqdm(total=epochs, initial=self.epoch, disable=not self.progress,
                   desc="training", unit="epoch")
        # a resumed run that had already stopped (the same command rerun) trains no
        # further: the stop is tested before the first epoch, not only after each
        reason = self._stop_reason()  # None: go on
        # wall time of the training so far, carried over a resume: when a run got within
        # reach of its final error (benchmarks/training_time.py) is read off the history
        before = self.history[-1].get("seconds", 0.0) if self.history else 0.0
        while reason is None and self.epoch < t["max_epochs"]:
            train_loss = self.run_epoch()
            valid_loss, rmse = self.validate()
            self.epoch += 1
            if not self.per_step_schedule:
                self.scheduler.step(valid_loss)
            lr = self.optimizer.param_groups[0]["lr"]
            self.history.append({"epoch": self.epoch, "train_loss": train_loss,
                                 "valid_loss": valid_loss, "lr": lr,
                                 "seconds": before + time.perf_counter() - start, **{
                                     f"valid_rmse_{k}": v for k, v in rmse.items()}})
            if valid_loss < self.best:
                self.best, self.stale = valid_loss, 0
                self.best_state = {k: v.clone() for k, v in self.model.state_dict().items()}
                if self.ema is not None:  # the validated weights are the average's
                    self.best_state.update({k: v.clone() for k, v in self.ema.items()})
            else:
                self.stale += 1
            if self.epoch % t["checkpoint_every"] == 0:
                self.checkpoint()
            bar.update(1)
            bar.set_postfix({"loss": f"{valid_loss:.3g}",
                             **{k[:4]: f"{v:.3g}" for k, v in rmse.items()}})
            reason = self._stop_reason()
            minutes = t["max_minutes"]
            if (reason is None and minutes is not None
                    and time.perf_counter() - start > 60 * minutes):
                reason = "max_minutes"  # of this call: a resumed run gets as many again
        bar.close()
        self.checkpoint()
        return self.finish(reason or "max_epochs", time.perf_counter() - start)

    def finish(self, reason: str, seconds: float, fit_info: dict | None = None) -> dict:
        """Keep the best or the last weights
        (:func:`fieldforce.training.schedule.kept_state`), save model.pt, score validation
        (and test) frames, plot."""
        kept = None
        if self.best_state is not None:
            t = self.config["training"]
            kept = schedule.kept_state(t.get("keep", "auto"), t.get("schedule", "plateau"),
                                       reason, self.best, self.history[-1]["valid_loss"])
            if kept == "best":
                self.model.load_state_dict(self.best_state)
            elif self.ema is not None:  # the last validated weights are the average's
                self._swap_ema()
        self.model.eval()
        settled = self.model.settle(self.train, self.terms)
        # the resolved training settings (defaults filled in): what a run used, even after
        # the package's defaults change
        training = json.loads(json.dumps(self.config["training"], default=str))
        save_model(self.model, self.output / "model.pt",
                   extra={"epochs": self.epoch, "stopped_by": reason, "kept": kept,
                          "training": training})
        scores = score_held_out(self.model, self.valid, self.test, self.output)
        plots = scores.pop("plots")
        result = {"epochs": self.epoch, "steps": self.steps, "stopped_by": reason,
                  "kept": kept, "seconds": seconds,
                  "n_train": len(self.train), "n_valid": len(self.valid),
                  "n_test": len(self.test), "training": training, **scores}
        if fit_info:
            result["fit"] = fit_info
        if settled:
            result["settled"] = settled
        if self.history:
            plots.append(learning_curve(self.history, self.output / "learning_curve.png"))
        result["plots"] = [str(p) for p in plots]
        write_json(result, self.output / "metrics.json")
        return result


def _source_of(config: dict, frames: list[Frame]) -> str:
    """The training data's name for messages."""
    source = config.get("data", {}).get("train")
    if source is None and frames:
        source = frames[0].source
    return str(source or "the training frames")


def train(config: dict, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> dict:
    """Train from a checked config; with ``resume`` continue from the last checkpoint.

    An output directory that already holds a model is refused unless ``resume`` or
    ``overwrite`` is given. ``training.committee: K > 1`` trains K seeds on one split and
    saves their committee (:mod:`fieldforce.training.committee`).
    """
    if config["training"].get("committee", 1) > 1:
        from fieldforce.training.committee import train_committee

        result = train_committee(config, resume=resume, progress=progress,
                                 overwrite=overwrite)
        result["summary"] = format_metrics(result["valid"], "validation set")
        return result
    check_outputs(config, resume, overwrite)
    trainer = Trainer(config, progress=progress)
    if resume and not trainer.resume():
        # killed before its first checkpoint: there is nothing to continue, so start over
        warnings.warn(f"--resume: no checkpoint in {trainer.output} yet; training from the "
                      "start", stacklevel=2)
    result = trainer.fit()
    result["summary"] = format_metrics(result["valid"], "validation set")
    return result


__all__ = ["OUTPUT_FILES", "Trainer", "check_outputs", "train"]
