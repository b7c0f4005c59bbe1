"""Training and evaluation of models on labelled frames (layer 5, workflows).

* :mod:`~fieldforce.training.config` — the YAML training file, its sections and checks;
* :mod:`~fieldforce.training.sources` — frames from files, specs or shipped data; splits;
* :mod:`~fieldforce.training.losses` — label spreads, prediction vs label, weighted loss;
* :mod:`~fieldforce.training.trainer` — the loop (or a family's closed-form fit),
  checkpoints, ``--resume``;
* :mod:`~fieldforce.training.evaluation` — RMSE / MAE / relative RMSE from the model's
  declared outputs;
* :mod:`~fieldforce.training.plots` — parity plots and the learning curve.
"""

from fieldforce.training.config import load_config
from fieldforce.training.evaluation import evaluate_frames, format_metrics, metrics, predict
from fieldforce.training.trainer import Trainer, train

__all__ = ["Trainer", "evaluate_frames", "format_metrics", "load_config", "metrics", "predict",
           "train"]
