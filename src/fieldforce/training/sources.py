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


def select_frames(frames: list[Frame], select: dict | None, source: str,
                  option: str = "data.select") -> list[Frame]:
    """The frames of ``source`` whose info entries take the values ``select`` gives
    (``data.select``, or the config key ``option``: key -> value or list of values; None
    keeps every frame). A key no frame has, or a value no frame takes, is one error naming
    what the frames do have: a misspelt selection would otherwise train on fewer frames
    without a word."""
    if not select:
        return frames

    def info_value(frame: Frame, key: str):
        v = frame.atoms.info.get(key)
        v = v.item() if getattr(v, "size", 0) == 1 else v  # numpy scalars from extxyz
        return v if isinstance(v, (str, int, float)) else None  # arrays never match

    for key, wanted in select.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        present = {info_value(f, key) for f in frames} - {None}
        if not present:
            keys = sorted({k for f in frames for k in f.atoms.info})
            raise ConfigError(f"{source}: {option} names info key {key!r}, which no frame "
                              f"has; the frames' info keys: {', '.join(keys)}")
        for w in wanted:
            if w not in present:
                raise ConfigError(f"{source}: {option}.{key}: no frame has {key} = "
                                  f"{w!r}; present: "
                                  f"{', '.join(sorted(map(str, present)))}")
        frames = [f for f in frames if info_value(f, key) in wanted]
    return frames


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
