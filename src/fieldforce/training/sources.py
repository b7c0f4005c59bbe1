"""Where the frames of a training run come from: files, data specs, shipped datasets,
and the seeded train / validation / test split."""

from __future__ import annotations

from fieldforce.data.frame import Frame
from fieldforce.data.splits import select_frames
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
    """(train, valid, test) frames of a checked config (``load_config``): the frames
    ``data.test_select`` picks are test frames, then ``test_fraction`` of the rest is drawn
    into the test set with seed + 1, then the validation split with the seed."""
    from fieldforce.data.splits import random_split

    data, seed = config["data"], config["training"]["seed"]
    frames = select_frames(load_frames(data["train"]), data.get("select"), data["train"])
    test = []
    if data.get("test_select"):
        # chosen frames first (e.g. the states a barrier runs between), then random ones
        test = select_frames(frames, data["test_select"], data["train"], "data.test_select")
        chosen = {id(f) for f in test}
        frames = [f for f in frames if id(f) not in chosen]
    if data["test_fraction"] > 0 and frames:
        frames, drawn = random_split(frames, [1 - data["test_fraction"],
                                              data["test_fraction"]], seed=seed + 1)
        test = test + drawn
    if "valid" in data:
        valid = select_frames(load_frames(data["valid"]), data.get("select"), data["valid"])
    else:
        frames, valid = random_split(frames, [1 - data["valid_fraction"],
                                              data["valid_fraction"]], seed=seed)
    if not valid or not frames:
        n = len(frames) + len(valid) + len(test)
        part = "validation" if not valid else "training"
        raise ConfigError(f"{data['train']}: {n} frame{'s' if n != 1 else ''} leave the "
                          f"{part} set empty (valid_fraction {data['valid_fraction']:g}, "
                          f"test_fraction {data['test_fraction']:g}"
                          + (f", test_select taking {len(test)}" if data.get("test_select")
                             else "")
                          + "); give more frames, raise data.valid_fraction or give "
                          "data.valid")
    return frames, valid, test


__all__ = ["load_frames", "select_frames", "split_data"]
