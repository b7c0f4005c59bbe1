"""What a training run writes, and the checks before it writes anything.

A run's output directory holds :data:`OUTPUT_FILES` (and plots). Before training,
:func:`check_outputs` refuses, each with one ConfigError, an output that would replace an
input, an existing model without ``--resume`` or ``--overwrite``, and a file where the
directory should be.
"""

from __future__ import annotations

from pathlib import Path

from fieldforce.errors import ConfigError

#: what a training run writes into its output directory (plots besides)
OUTPUT_FILES = ("model.pt", "metrics.json", "checkpoint.pt", "learning_curve.png")


def make_output_directory(path: Path) -> None:
    """Create the output directory, or one ConfigError saying why it cannot be."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: the output is a file, not a directory; choose another "
                          "output path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the output directory "
                          f"({exc.strerror})") from None


def check_outputs(config: dict, resume: bool, overwrite: bool) -> None:
    """Before training: outputs that would replace an input, an existing model, a file
    where the output directory should be; each one ConfigError."""
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.data.io import source_files
    from fieldforce.training.config import SHIPPED_PREFIX

    output = Path(config["output"])
    inputs = {"training configuration": config.get("source")
              if config.get("source", "<config>") != "<config>" else None}
    for key in ("train", "valid"):
        source = config["data"].get(key)
        if source and not source.startswith(SHIPPED_PREFIX):
            inputs.update({f"{key} {k}": v for k, v in source_files(source).items()})
    refuse_overwriting({name: output / name for name in OUTPUT_FILES}, inputs)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: the output is a file, not a directory; choose another "
                          "output path")
    finished = [output / name for name in ("model.pt", "checkpoint.pt")
                if (output / name).exists()]
    if finished and not (resume or overwrite):
        raise ConfigError(f"{finished[0]} exists (an earlier training); pass --resume to "
                          "continue it from its last checkpoint, or --overwrite to train a "
                          "new model in its place")
    if overwrite and not resume:
        (output / "checkpoint.pt").unlink(missing_ok=True)  # never resume the old run


__all__ = ["OUTPUT_FILES", "check_outputs", "make_output_directory"]
