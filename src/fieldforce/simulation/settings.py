"""The keys of an ``fieldforce md`` file: :class:`MDSettings` (``fieldforce config md``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fieldforce.config import Section, option
from fieldforce.errors import DataError

ENSEMBLES = ("nve", "langevin", "nvt-berendsen", "bussi", "nose-hoover")


@dataclass(kw_only=True)
class MDSettings(Section):
    """The keys of an ``fieldforce md`` file (times in fs, temperatures in K, fields V/Å)."""

    section: ClassVar[str] = ""  # a whole file
    structure: Path = option(doc="structure file ASE can read (its first frame is used)")
    model: Path = option(doc="fieldforce model file")
    output: Path = option(doc="output directory")
    steps: int = option(doc="total number of MD steps (a resumed run continues to it)",
                        minimum=0)
    ensemble: str = option(doc="nve, langevin, nvt-berendsen, bussi or nose-hoover (ASE's "
                           "NoseHooverChainNVT)", choices=ENSEMBLES)
    field: Any = option(None, "a field config (ExternalField.from_config): static, ramp, "
                        "sinusoid, pulse, point_charge, grid or fem (re-solved around the "
                        "atoms)",
                        check=lambda v: isinstance(v, dict) or hasattr(v, "uniform_value"),
                        expected="a field config (a mapping with a 'type' key)")
    temperature_K: float = option(0.0, "thermostat target (> 0 for thermostats) and "
                                  "temperature of the initial Maxwell-Boltzmann velocities; "
                                  "0: the structure file's momenta (or rest)", minimum=0)
    friction_per_fs: float = option(0.01, "Langevin friction, 1/fs", exclusive_minimum=0)
    thermostat_time_fs: float = option(100.0, "relaxation time of Berendsen/Bussi, damping "
                                       "of Nose-Hoover, fs", exclusive_minimum=0)
    timestep_fs: float = option(0.5, "time step, fs", exclusive_minimum=0)
    write_interval: int = option(10, "steps between trajectory frames and log lines",
                                 minimum=1)
    write_born_charges: bool = option(False, "also write the Born charges of every frame "
                                      "(models with charges; extra backward passes on the "
                                      "written steps)")
    seed: int = option(0, "random seed (velocities, Langevin noise)", minimum=0)
    device: str = option("cpu", "torch device of the model")

    def check(self) -> None:
        if self.ensemble != "nve" and self.temperature_K <= 0:
            raise self.invalid("temperature_K", f"a target temperature > 0 K for the "
                                                f"{self.ensemble} thermostat")

    def resolve(self, base_dir: str | Path | None, source: str) -> None:
        """Paths relative to ``base_dir``; the input files must exist; the field built
        (a field config becomes an :class:`~fieldforce.fields.ExternalField`)."""
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for key in ("structure", "model", "output"):
            path = getattr(self, key)
            setattr(self, key, Path(os.path.normpath(path if path.is_absolute()
                                                     else base / path)))
        for key in ("structure", "model"):
            if not getattr(self, key).is_file():
                raise DataError(f"no such file (md config key {key!r})",
                                path=str(getattr(self, key)))
        if isinstance(self.field, dict):
            from fieldforce.config import context
            from fieldforce.fields import ExternalField

            with context(source, "field"):
                self.field = ExternalField.from_config(self.field, base)


def check_config(config: dict, base_dir: str | Path | None = None,
                 source: str = "md config") -> MDSettings:
    """The md config checked, defaults filled in, paths resolved, the field built."""
    settings = MDSettings.from_dict(config, source=source)
    settings.resolve(base_dir, source)
    return settings


__all__ = ["ENSEMBLES", "MDSettings", "check_config"]
