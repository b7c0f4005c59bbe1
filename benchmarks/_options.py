"""Command-line helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import yaml


def key_values(pairs: list[str]) -> dict:
    """``["charge_unit=1.0", "hidden=[32, 32]"]`` -> ``{"charge_unit": 1.0, ...}``.

    Values are parsed as YAML, so numbers, booleans and lists keep their types.
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out
