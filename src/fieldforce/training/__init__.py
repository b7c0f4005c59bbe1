"""Training and evaluation of models on labelled frames (layer 4, workflows).

* :mod:`~fieldforce.training.config` — the YAML configuration and its checks;
* :mod:`~fieldforce.training.trainer` — losses, loop, checkpoints, plots;
* :mod:`~fieldforce.training.evaluation` — RMSE / MAE / relative RMSE and parity plots.
"""

from fieldforce.training.config import load_config
from fieldforce.training.evaluation import evaluate_frames, format_metrics, metrics, predict
from fieldforce.training.trainer import Trainer, train

__all__ = ["Trainer", "evaluate_frames", "format_metrics", "load_config", "metrics", "predict",
           "train"]
