"""Where the frames of a training run come from: files, data specs, shipped datasets,
and the seeded train / validation / test split."""

from __future__ import annotations

from fieldforce.data.frame import Frame
from fieldforce.errors import ConfigError
from fieldforce.training.config import SHIPPED_PREFIX


def load_frames(source: str) -> list[Frame]:
    """Frames of a data spec, a canonical extxyz, or a shipped dataset (``fieldforce:water``,
    ``fieldforce:metal``)."""
    from fieldforce.data.io import read_frames

    if source.startswith(SHIPPED_PREFIX):
        from fieldforce.datasets import load_shipped

        return load_shipped(source.split(":", 1)[1])
    return read_frames(source)


def split_data(config: dict) -> tuple[list[Frame], list[Frame], list[Frame]]:
    """(train, valid, test) frames of a checked config (``load_config``): the test split is
    drawn with seed + 1, then the validation split with the seed."""
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
    if not valid or not frames:
        n = len(frames) + len(valid) + len(test)
        part = "validation" if not valid else "training"
        raise ConfigError(f"{data['train']}: {n} frame{'s' if n != 1 else ''} leave the "
                          f"{part} set empty (valid_fraction {data['valid_fraction']:g}, "
                          f"test_fraction {data['test_fraction']:g}); give more frames, "
                          "raise data.valid_fraction or give data.valid")
    return frames, valid, test


__all__ = ["load_frames", "split_data"]
