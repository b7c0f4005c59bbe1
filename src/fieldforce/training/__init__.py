"""Training and evaluation of models on labelled frames (layer 5, workflows).

* :mod:`~fieldforce.training.config` — the YAML training file, its sections and checks;
* :mod:`~fieldforce.training.sources` — frames from files, specs or shipped data; splits;
* :mod:`~fieldforce.training.losses` — label spreads, prediction vs label, weighted loss;
* :mod:`~fieldforce.training.trainer` — the loop (or a family's closed-form fit);
* :mod:`~fieldforce.training.committee` — ``training.committee: K``: K seeds on one split
  saved as one committee model;
* :mod:`~fieldforce.training.schedule` — optimizer, learning-rate schedule, run length,
  early stopping, which weights model.pt keeps;
* :mod:`~fieldforce.training.checkpoints` — checkpoints and ``--resume``;
* :mod:`~fieldforce.training.outputs` — what a run writes, and the checks before it does;
* :mod:`~fieldforce.training.evaluation` — RMSE / MAE / relative RMSE from the model's
  declared outputs;
* :mod:`~fieldforce.training.plots` — parity plots and the learning curve.
"""

from fieldforce.training.config import load_config
from fieldforce.training.evaluation import evaluate_frames, format_metrics, metrics, predict
from fieldforce.training.trainer import Trainer, train

__all__ = ["Trainer", "evaluate_frames", "format_metrics", "load_config", "metrics", "predict",
           "train"]
