"""Simulation (layer 6): the ASE calculator, molecular dynamics with observers.

* :mod:`~fieldforce.simulation.calculator` — :class:`FieldForceCalculator`, any model in
  any field, results from the model's declared outputs;
* :mod:`~fieldforce.simulation.md` — :func:`run_md` and :class:`MDRun`: ASE's integrators
  with observers attached, per-step callbacks (``MDRun.attach(fn, interval)``), stop
  requests, checkpointed trajectories and ``--resume``;
* :mod:`~fieldforce.simulation.observers` — the observers (:class:`Observer`): trajectory
  writer, log, polarization tracker, statistics, progress;
* :mod:`~fieldforce.simulation.neb` — :func:`field_barriers`: climbing-image NEB of a hop
  in a uniform field along the surface normal, over a list of fields;
* :mod:`~fieldforce.simulation.settings` — :class:`MDSettings`, the keys of an MD file;
* :mod:`~fieldforce.simulation.restart` — continuing a run: the last complete frame, the
  log trimmed to it, the summary of the whole run;
* :mod:`~fieldforce.simulation.polarization` — the continuous polarization of a periodic
  run and its branch on resume.
"""

from fieldforce.simulation.calculator import FieldForceCalculator
from fieldforce.simulation.md import MDRun, MDSettings, run_md
from fieldforce.simulation.neb import FieldBarriers, field_barriers
from fieldforce.simulation.observers import Callback, Observer

__all__ = ["Callback", "FieldBarriers", "FieldForceCalculator", "MDRun", "MDSettings",
           "Observer", "field_barriers", "run_md"]
