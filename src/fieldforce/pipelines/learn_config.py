"""The ``fieldforce learn`` file: its sections as checked settings (the loop itself is
:mod:`fieldforce.pipelines.learn`, whose docstring describes the file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from fieldforce.config import Section, option


@dataclasses.dataclass(kw_only=True)
class LabelSettings(Section):
    """The ``label:`` section: the DFT backend that labels the selected frames."""

    section: ClassVar[str] = "label"
    backend: str = option("pyscf", "DFT backend (pyscf or gpaw)")
    settings: dict[str, Any] = option(default_factory=dict,
                                      doc="the backend's settings (fieldforce config pyscf)")
    properties: list[str] = option(["energy", "forces", "dipole", "polarizability"],
                                   "properties labelled", non_empty=True)


@dataclasses.dataclass(kw_only=True)
class LearnSettings(Section):
    """A whole ``fieldforce learn`` file."""

    section: ClassVar[str] = ""
    structure: Path = option(doc="start structure of the MD (first frame)")
    output: Path = option(doc="output directory")
    model: dict[str, Any] = option(default_factory=lambda: {"family": "response",
                                                            "head": "gpr"},
                                   doc="the model section (a closed-form family with "
                                       "uncertainties)")
    md: dict[str, Any] = option(default_factory=dict,
                                doc="the MD settings (fieldforce config md) without "
                                    "structure, model and output; steps is the length "
                                    "of the run to cover")
    label: LabelSettings = option(default_factory=LabelSettings, doc="the DFT labelling")
    initial_data: Path | None = option(None, "labelled frames to start from (extxyz or "
                                       "spec); none: initial_frames are labelled first")
    initial_frames: int = option(4, "rattled copies of the start structure labelled when "
                                 "there is no initial data", minimum=1)
    rattle_A: float = option(0.05, "standard deviation of those displacements, Å",
                             exclusive_minimum=0)
    uncertainty: str = option("forces_uncertainty", "the model output compared with the "
                              "threshold")
    threshold: float | None = option(None, "absolute threshold in the output's unit (null: "
                                     "threshold_relative)", exclusive_minimum=0)
    threshold_relative: float = option(3.0, "threshold as a multiple of the output's "
                                       "median on the training frames",
                                       exclusive_minimum=0)
    check_interval: int = option(10, "MD steps between checks", minimum=1)
    max_dft_calls: int = option(50, "DFT budget (labelled frames selected from the MD)",
                                minimum=0)
    seed: int = option(0, "random seed of the initial displacements", minimum=0)


__all__ = ["LabelSettings", "LearnSettings"]
