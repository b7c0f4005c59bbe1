"""``training.committee: K``: K members trained on one split, saved as one committee model.

One training file, one command, one model file: member k is the run the file would make
with ``training.seed: seed + k`` (its initial weights and batch order), except that every
member trains on the split ``training.seed`` draws, so the validation and test frames are
held out from all of them. Members are written to ``OUTPUT/member_<k>/`` (each a whole
training run: model.pt, metrics.json, checkpoints, plots); ``OUTPUT/model.pt`` is their
:class:`~fieldforce.models.CommitteeModel`, its uncertainties (the members' spread)
calibrated on the validation frames, and ``OUTPUT/metrics.json`` scores it like any model,
with each member's scores beside it.

Why: averaging K seeds of one setting is the cheapest accuracy a fast model can buy (on
the water clusters three seeds at 0.0094 eV/Å each give 0.0085 together, and four DES370K
dimer seeds at 0.254-0.268 give 0.239; BENCHMARKS.md, "Committees"), and the spread is an
error bar for active learning and MD monitoring. It costs K trainings and about K model
evaluations per step (less the density the members share).

``--resume`` continues where the run stopped: finished members (a metrics.json) are read
back, the interrupted one resumes from its checkpoint, the rest train.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from fieldforce.data.atomic import write_json
from fieldforce.models import CommitteeModel, load_model, save_model
from fieldforce.training.evaluation import score_held_out
from fieldforce.training.outputs import check_outputs, make_output_directory
from fieldforce.training.sources import split_data


def member_config(config: dict, k: int) -> dict:
    """The config of member ``k``: seed + k, its own output directory, no committee."""
    member = copy.deepcopy(config)
    member["training"]["seed"] = config["training"]["seed"] + k
    member["training"]["committee"] = 1
    member["output"] = str(Path(config["output"]) / f"member_{k}")
    return member


def train_committee(config: dict, resume: bool = False, progress: bool = True,
                    overwrite: bool = False) -> dict:
    """Train ``training.committee`` members of a checked config and assemble them (module
    docstring); returns the committee's metrics (as :meth:`Trainer.finish` does for one
    model) with ``members``: each member's."""
    from fieldforce.training.trainer import Trainer

    size = config["training"]["committee"]
    output = Path(config["output"])
    check_outputs(config, resume, overwrite)
    members = [member_config(config, k) for k in range(size)]
    for member in members:  # every refusal before the first member trains
        check_outputs(member, resume, overwrite)
    data = split_data(config)
    start = time.perf_counter()
    results, models = [], []
    for k, member in enumerate(members):
        where = Path(member["output"])
        if resume and (where / "metrics.json").exists() and (where / "model.pt").exists():
            result = json.loads((where / "metrics.json").read_text())
            if progress:
                print(f"member {k + 1}/{size}: finished earlier ({where})", flush=True)
        else:
            if progress:
                print(f"member {k + 1}/{size} (seed {member['training']['seed']})",
                      flush=True)
            trainer = Trainer(member, progress=progress, data=data)
            if resume:
                trainer.resume()
            result = trainer.fit()
        results.append(result)
        models.append(load_model(where / "model.pt"))
    train, valid, test = data
    committee = CommitteeModel.from_models(models)
    # the members chose their kept weights on the validation frames but never fitted
    # them: the closest to held-out data the run has, so the spread is calibrated there
    factors = committee.calibrate(valid)
    training = json.loads(json.dumps(config["training"], default=str))
    make_output_directory(output)
    save_model(committee, output / "model.pt",
               extra={"members": [str(Path(m["output"]) / "model.pt") for m in members],
                      "calibration": {"data": "validation frames", "frames": len(valid),
                                      "factors": factors},
                      "training": training})
    scores = score_held_out(committee, valid, test, output)
    result = {"epochs": sum(r["epochs"] for r in results), "steps": sum(
                  r.get("steps", 0) for r in results),
              "stopped_by": f"committee of {size}", "seconds": time.perf_counter() - start,
              "n_train": len(train), "n_valid": len(valid), "n_test": len(test),
              "training": training, **scores,
              "calibration": factors,
              "members": [{key: r.get(key) for key in ("epochs", "steps", "stopped_by",
                                                      "kept", "seconds", "valid", "test")
                           if key in r} for r in results]}
    result["plots"] = [str(p) for p in result["plots"]]
    write_json(result, output / "metrics.json")
    return result


__all__ = ["member_config", "train_committee"]
