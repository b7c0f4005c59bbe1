"""On-the-fly learning: ``fieldforce learn CONFIG.yaml``.

MD with a kernel model (any closed-form family with a predicted uncertainty, e.g.
``model: {family: response, head: gpr}``); every ``check_interval`` steps the chosen
uncertainty of the current structure is compared with the threshold. Above it, the MD
stops, that structure is labelled with the DFT backend at the field the MD applied at
that moment, added to the data, the model is refitted (closed form: seconds) and the MD
continues from the same state (positions, momenta, step, time). The loop ends when the
MD reaches ``md.steps`` (the model then covers the run) or when ``max_dft_calls`` are
spent. Without starting data, ``initial_frames`` copies of the start structure with
random displacements (``rattle_A``) are labelled first.

Threshold: ``threshold`` in the output's unit (absolute), or else ``threshold_relative``
times the typical value of that uncertainty on the training frames (their median),
recomputed at each refit. Uncertainties are calibrated on line: every frame sent to DFT
is first predicted by the model that chose it, and the root-mean-square of its errors
over predicted sigmas (z), over all calls so far, scales the model's sigma (before the
first call: the same from a 4-fold cross-validation over the starting frames;
``calibration`` in learn.json). An absolute threshold is therefore in
calibrated units; a relative one is not affected. The noise levels of the fit (which set
the scale of every uncertainty) are cross-validated on the starting data and again
whenever the data have doubled, and pinned in between (``noise`` in learn.json), unless
the model section sets them. The uncertainty of a structure is the largest absolute value
of the output (for ``forces_uncertainty``: of any atom's component).

Outputs in ``output/`` (every file written atomically; the job resumes with
``--resume`` after an interruption, even a kill -9: a labelled frame is never lost, and
learn.json is the commit point, so a frame labelled but not yet recorded is recorded on
resume): ``data.xyz`` (the labelled frames; those the loop selected carry ``learn_step``,
``learn_time_fs``, ``learn_uncertainty`` and ``learn_dft_seconds`` in their info),
``model.pt`` (the current model), ``md/`` (the MD run:
``trajectory.xyz``, ``md.log``), ``learn.json`` (one entry per DFT call: MD step and time,
the uncertainty before and after the refit with the threshold of each model (a refit may
choose other noise levels by cross-validation, which rescales all its uncertainties;
a relative threshold follows), the DFT and fit seconds; and
totals: DFT, fit and MD time, calls, steps, why it ended).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fieldforce.errors import ConfigError
from fieldforce.pipelines.learn_config import LabelSettings, LearnSettings


def _measure(model, frames, name: str) -> np.ndarray:
    """The largest absolute value of output ``name`` for each frame."""
    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    values = []
    for frame in frames:
        batch = collate([frame])
        out = evaluate(model, batch, requests={name} & model.requestable() or None)
        if name not in out:
            raise ConfigError(f"learn: the {model.family!r} model has no output {name!r}; "
                              "uncertainty must name one of its uncertainties (e.g. "
                              "forces_uncertainty of model head gpr)")
        values.append(float(out[name].detach().abs().max()))
    return np.asarray(values)


def _zscores(model, frame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(z, error): (prediction - label) / predicted sigma and prediction - label of the
    property ``name`` measures (e.g. forces for forces_uncertainty), per component, of
    ``model`` on the labelled ``frame``."""
    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    prop = name.removesuffix("_uncertainty")
    batch = collate([frame])
    if prop not in batch.labels:
        return np.zeros(0), np.zeros(0)
    out = evaluate(model, batch, requests={name} & model.requestable() or None)
    error = (out[prop] - batch.labels[prop]).detach().numpy().ravel()
    sigma = np.abs(out[name].detach().numpy()).ravel()
    return error / np.maximum(sigma, np.finfo(float).tiny), error


class OnTheFly:
    """The loop of one ``fieldforce learn`` file (see the module docstring)."""

    def __init__(self, config: dict, base_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = True, source: str = "learn config"):
        from fieldforce.models import family_class
        from fieldforce.reference.backend import get_backend
        from fieldforce.simulation.settings import MDSettings

        s = LearnSettings.from_dict(config, source=source)
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for key in ("structure", "output", "initial_data"):
            value = getattr(s, key)
            if value is not None and not value.is_absolute():
                setattr(s, key, base / value)
        if not s.structure.is_file():
            raise ConfigError(f"{source}: structure {s.structure}: no such file")
        cls = family_class(s.model.get("family", "response"), source, s.model.get("head"))
        if cls.fitting != "closed_form":
            raise ConfigError(f"{source}: model: on-the-fly learning refits after every "
                              f"DFT call, so it needs a closed-form family (e.g. family: "
                              f"response, head: gpr); {cls.family!r} with {cls.head!r} "
                              "heads is trained by gradient descent")
        for key in ("structure", "model", "output"):
            if key in s.md:
                raise ConfigError(f"{source}: md.{key}: set by the learn file itself (the "
                                  f"start structure, the current model, output/md)")
        self.md_config = {"structure": str(s.structure), "model": str(s.output / "model.pt"),
                          "output": str(s.output / "md"), **s.md}
        # the MD settings checked now, not after the first DFT calls
        MDSettings.from_dict({**self.md_config, "model": str(s.structure)},
                             source=f"{source} (md)")
        self.backend = get_backend(s.label.backend, **s.label.settings)
        self.settings, self.source = s, source
        self.progress = progress
        self.out = s.output
        self.state_path = self.out / "learn.json"
        if self.state_path.exists() and not resume:
            raise ConfigError(f"{self.state_path} already exists; pass --resume to continue "
                              "this learning run, or choose a new output directory")
        self.state = self._read_state() if resume and self.state_path.exists() else {
            "calls": [], "seconds": {"dft": 0.0, "fit": 0.0, "md": 0.0}, "ended_by": None}

    # -- persistence -----------------------------------------------------------------------

    def _read_state(self) -> dict:
        import json

        return json.loads(self.state_path.read_text())

    def _save_state(self) -> None:
        from fieldforce.data.atomic import write_json

        write_json(self.state, self.state_path)

    def _say(self, message: str) -> None:
        if self.progress:
            print(f"learn: {message}", flush=True)

    # -- the pieces ------------------------------------------------------------------------

    def _label(self, atoms, efield: np.ndarray):
        """One labelled frame (DFT at ``efield`` V/Å); its seconds."""
        from fieldforce.data.frame import Frame

        start = time.perf_counter()
        labels = dict(self.backend.label(atoms, np.asarray(efield, float),
                                         self.settings.label.properties))
        labels.pop("info", None)
        labels["efield"] = np.asarray(efield, float)
        atoms = atoms.copy()
        atoms.calc = None
        seconds = time.perf_counter() - start
        self.state["seconds"]["dft"] += seconds
        return Frame(atoms, labels), seconds

    def _data(self) -> list:
        from fieldforce.data.io import read_frames

        path = self.out / "data.xyz"
        return read_frames(path) if path.exists() else []

    def _store(self, frames) -> list:
        """Write ``frames`` to data.xyz and return them as stored: every fit sees the data
        as the file holds them (positions and forces to the writer's precision), so a
        resumed run, which reads them back, fits exactly what an uninterrupted one did."""
        from fieldforce.data.io import write_frames

        write_frames(frames, self.out / "data.xyz")
        return self._data()

    def _initial(self) -> list:
        """All frames labelled so far: the starting data (given, or rattled copies of the
        start labelled now, each stored as soon as it is labelled, so an interruption
        loses none) followed by the frames the loop has selected."""
        import ase.io

        from fieldforce.data.io import read_frames

        frames = self._data()
        if self.settings.initial_data is not None:
            if not frames:
                frames = self._store(read_frames(self.settings.initial_data))
            return frames
        start = ase.io.read(self.settings.structure, 0)
        field = self._field_at(0.0, start)
        rng = np.random.default_rng(self.settings.seed)
        for k in range(self.settings.initial_frames):
            atoms = start.copy()
            atoms.positions += rng.normal(0, self.settings.rattle_A, atoms.positions.shape)
            if k < len(frames):
                continue  # labelled before an interruption (same seed, same structure)
            frame, seconds = self._label(atoms, field)
            frames = self._store([*frames, frame])
            self._say(f"initial frame {k + 1}/{self.settings.initial_frames} labelled in "
                      f"{seconds:.1f} s")
        return frames

    def _starting_count(self) -> int:
        """How many frames of data.xyz are starting data (the rest were selected)."""
        from fieldforce.data.io import read_frames

        if self.settings.initial_data is not None:
            return len(read_frames(self.settings.initial_data))
        return self.settings.initial_frames

    def _field_at(self, time_fs: float, atoms) -> np.ndarray:
        """The uniform field [3] V/Å the MD applies at ``time_fs`` (zero: none)."""
        from fieldforce.fields import ExternalField

        config = self.settings.md.get("field")
        if config is None:
            return np.zeros(3)
        field = ExternalField.from_config(config, self.out)
        if not field.is_uniform:
            raise ConfigError(f"{self.source}: md.field: on-the-fly labelling needs a "
                              "uniform field (the DFT backends apply one field to the whole "
                              "structure)")
        return field.uniform_value(time_fs).detach().numpy().astype(float)

    def _initial_calibration(self, frames, folds: int = 4) -> None:
        """z-scores of the starting frames, each predicted by a model fitted on the others
        (``folds``-fold, the noise of the full fit pinned): the calibration before any
        DFT call."""
        from fieldforce.models import build_model

        if self.state.get("z_squares") or len(frames) < 2:
            return
        config = self._model_config(frames, pinned=True)
        squares = []
        for k in range(min(folds, len(frames))):
            held = frames[k::folds]
            rest = [f for i, f in enumerate(frames) if i % folds != k]
            model = build_model(config)
            model.fit(rest, self._weights())
            for frame in held:
                z, _ = _zscores(model.eval(), frame, self.settings.uncertainty)
                if z.size:
                    squares.append(float(np.mean(z**2)))
        if squares:
            self.state["z_squares_initial"] = squares

    def _scale(self) -> float:
        """The on-line calibration factor of the uncertainty (RMS z over the calls)."""
        squares = self.state.get("z_squares") or self.state.get("z_squares_initial") or []
        return float(np.sqrt(np.mean(squares))) if squares else 1.0

    def _weights(self) -> dict[str, float]:
        """The fit's terms: the labelled properties a response model fits."""
        return {name: 1.0 for name in self.settings.label.properties
                if name in ("energy", "forces", "dipole", "polarizability")}

    def _model_config(self, frames, pinned: bool) -> dict:
        """The model section, with the species of ``frames`` unless it names them and,
        with ``pinned``, the noise levels of the last cross-validation (a level the
        section sets wins)."""
        from fieldforce.models.backbone import species_of

        noise = (self.state.get("noise") or {}) if pinned else {}
        config = {**{k: v for k, v in noise.items() if v is not None}, **self.settings.model}
        config.setdefault("species", species_of(frames))
        return config

    def _threshold(self, model, frames) -> float:
        """The threshold for ``model``: absolute, or relative to its median uncertainty on
        ``frames`` (in calibrated units)."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        typical = float(np.median(_measure(model, frames, self.settings.uncertainty)))
        return self.settings.threshold_relative * typical * self._scale()

    def _fit(self, frames):
        """A model fitted on ``frames`` (closed form), saved."""
        from fieldforce.models import build_model, save_model

        start = time.perf_counter()
        # noise levels: cross-validated when the data have doubled since the last time,
        # else pinned at those values, so that consecutive models share one uncertainty
        # scale (cross-validation on a handful of frames jumps between grid levels)
        refresh = self.state.get("noise") is None or len(frames) >= 2 * self.state.get(
            "noise_frames", 0)
        model = build_model(self._model_config(frames, pinned=not refresh))
        model.record_domain(frames)
        info = model.fit(frames, self._weights())
        model.eval()
        if refresh:
            self.state["noise"] = {k: info.get(k) for k in (
                "energy_noise", "forces_noise", "dipole_noise", "polarizability_noise")}
            self.state["noise_frames"] = len(frames)
        save_model(model, self.out / "model.pt", extra={"frames": len(frames)})
        self.state["seconds"]["fit"] += time.perf_counter() - start
        return model

    # -- the loop --------------------------------------------------------------------------

    def _commit(self, model, threshold: float, frame, frames: list) -> tuple[Any, float]:
        """Add a frame selected (and labelled) by ``model`` to ``frames``, refit, record the
        call in learn.json; the new model and its threshold.

        learn.json is the commit point: a frame stored in data.xyz but not yet recorded
        there (a run killed in between) is committed again on resume, from the selection
        record the frame carries in its info (``learn_*`` keys) and the same choosing
        model, refitted from the committed frames with the same noise levels."""
        s = self.settings

        def info(key: str, kind=float):
            value = frame.atoms.info.get(key)
            return None if value is None else kind(value)

        z, error = _zscores(model, frame, s.uncertainty)  # the choosing model, unrefitted
        if z.size:
            self.state.setdefault("z_squares", []).append(float(np.mean(z**2)))
        frames.append(frame)
        fit_start = time.perf_counter()
        new_model = self._fit(frames)
        new_threshold = self._threshold(new_model, frames)
        after = self._scale() * float(_measure(new_model, [frame], s.uncertainty)[0])
        entry = {"step": info("learn_step", int), "time_fs": info("learn_time_fs"),
                 "uncertainty_before": info("learn_uncertainty"),
                 "uncertainty_after": after,
                 "error_before": float(np.abs(error).max()) if error.size else None,
                 "rms_z_of_this_frame": float(np.sqrt(np.mean(z**2))) if z.size else None,
                 "calibration": self._scale(),
                 "threshold": threshold, "threshold_after": new_threshold,
                 "frames": len(frames),
                 "dft_seconds": info("learn_dft_seconds"),
                 "fit_seconds": time.perf_counter() - fit_start}
        self.state["calls"].append(entry)
        self._save_state()
        self._say(f"DFT call {len(self.state['calls'])} at step {entry['step']}: "
                  f"{s.uncertainty} {entry['uncertainty_before'] or float('nan'):.3g} "
                  f"(threshold {threshold:.3g}; largest error "
                  f"{entry['error_before'] or float('nan'):.3g}) -> {after:.3g} (threshold "
                  f"{new_threshold:.3g}), DFT {entry['dft_seconds'] or float('nan'):.1f} s, "
                  f"{len(frames)} frames")
        return new_model, new_threshold

    def run(self) -> dict:
        from fieldforce.data.extxyz import complete_text
        from fieldforce.simulation.md import MDRun
        from fieldforce.simulation.restart import last_frame

        s = self.settings
        self.out.mkdir(parents=True, exist_ok=True)
        labelled = self._initial()
        committed = self._starting_count() + len(self.state["calls"])
        frames, pending = labelled[:committed], labelled[committed:]
        model = self._fit(frames)
        if not self.state.get("z_squares") and not self.state.get("z_squares_initial"):
            self._initial_calibration(frames)
            self._say(f"uncertainty calibration from the starting frames: x{self._scale():.3g}")
        threshold = self._threshold(model, frames)  # in calibrated units
        self._save_state()
        for frame in pending:  # labelled before an interruption, not yet recorded
            self._say("committing the frame labelled before the interruption")
            model, threshold = self._commit(model, threshold, frame, frames)
        trajectory = self.out / "md" / "trajectory.xyz"
        while True:
            found: dict[str, Any] = {}

            scale = self._scale()

            def check(run, threshold=threshold, found=found, scale=scale):
                value = scale * float(np.abs(run.calc.get_property(s.uncertainty,
                                                                   run.atoms)).max())
                if value > threshold:
                    found.update(step=run.step, time_fs=run.time_fs, value=value)
                    run.request_stop(f"{s.uncertainty} {value:.3g} > {threshold:.3g}")

            resume = trajectory.is_file() and bool(complete_text(trajectory)[0].strip())
            if trajectory.is_file() and not resume:  # killed while writing its first frame
                trajectory.unlink()
            md = MDRun(self.md_config, resume=resume, progress=self.progress,
                       source=f"{self.source} (md)")
            if md.step >= md.final_step:
                self.state["ended_by"] = "md.steps reached under the threshold"
                break
            md.attach(check, s.check_interval)
            last_call = self.state["calls"][-1]["step"] if self.state["calls"] else -1
            if not md.fresh and md.step % s.check_interval == 0 and md.step > last_call:
                # an interrupted run may have written this frame and been killed before
                # its check ran (the writer runs first): check it now, as it would have
                check(md)
            start = time.perf_counter()
            md.run()
            self.state["seconds"]["md"] += time.perf_counter() - start
            if not found:
                self.state["ended_by"] = "md.steps reached under the threshold"
                break
            if len(self.state["calls"]) >= s.max_dft_calls:
                self.state["ended_by"] = f"DFT budget spent ({s.max_dft_calls} calls)"
                self._say(f"step {found['step']}: {s.uncertainty} {found['value']:.3g} above "
                          f"{threshold:.3g}, but the DFT budget is spent")
                break
            atoms = last_frame(trajectory)  # the structure the MD stopped at
            efield = self._field_at(found["time_fs"], atoms)
            frame, dft_seconds = self._label(atoms, efield)
            # the selection record travels with the frame (see _commit)
            frame.atoms.info.update(learn_step=int(found["step"]),
                                    learn_time_fs=float(found["time_fs"]),
                                    learn_uncertainty=float(found["value"]),
                                    learn_dft_seconds=float(dft_seconds))
            frame = self._store([*frames, frame])[-1]
            model, threshold = self._commit(model, threshold, frame, frames)
        self.state["frames"] = len(frames)
        self.state["dft_calls"] = len(self.state["calls"])
        self.state["steps"] = int(last_frame(trajectory).info["step"]) if trajectory.exists() \
            else 0
        self._save_state()
        self._say(f"ended: {self.state['ended_by']}; {self.state['dft_calls']} DFT calls, "
                  f"{self.state['frames']} frames, {self.state['steps']} MD steps")
        return self.state


def learn(config: dict, base_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, source: str = "learn config") -> dict:
    """Run on-the-fly learning (see the module docstring); returns learn.json's content."""
    return OnTheFly(config, base_dir, resume, progress, source).run()


__all__ = ["LabelSettings", "LearnSettings", "OnTheFly", "learn"]
