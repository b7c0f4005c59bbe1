"""The one way configuration files are read: YAML with YAML 1.2 numbers, one clear error.

Every configuration file (training, data specs, MD, on-the-fly learning) goes through
:func:`read_mapping`, so a missing file, bad YAML or a file that is not a mapping gives
the same ConfigError naming the file and what it was meant to be.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from fieldforce.errors import ConfigError


@functools.cache
def yaml_loader():
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: ``1e-3`` is a float (YAML
    1.1, PyYAML's default, wants ``1.0e-3`` and reads ``1e-3`` as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))
    return Loader


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """The parsed YAML in ``path``; one ConfigError naming the file and ``what`` it is.

    Numbers follow YAML 1.2: ``1e-3`` is the float 0.001, not the string "1e-3"."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def read_mapping(path: str | os.PathLike, what: str) -> dict:
    """:func:`read_yaml` for files that must hold a mapping of keys (an empty file: {})."""
    raw = read_yaml(path, what)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping of keys to values, got "
                          f"{type(raw).__name__}")
    return raw


__all__ = ["read_mapping", "read_yaml", "yaml_loader"]
