"""The field interface (:class:`ExternalField`), its config round trip and input checks.

A field is a callable ``field(positions [N,3] Å, time_fs) -> E [N,3] V/Å``; subclasses
with a config form set ``config_type`` and are then found by
``ExternalField.from_config`` (``{type: ..., ...}`` dicts from YAML). The full contract
(flags, potential and its gauge, ``update`` for fields that depend on the atoms) is in the
docstring of :class:`ExternalField`.
"""


from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fieldforce.config import check_keys, suggestion
from fieldforce.config import source as config_source
from fieldforce.errors import ConfigError, DataError, UnitError
from fieldforce.units import parse_unit

if TYPE_CHECKING:
    from ase import Atoms


def _check_positions(positions: Any) -> None:
    if not isinstance(positions, torch.Tensor) or positions.ndim != 2 or positions.shape[1] != 3:
        shape = tuple(positions.shape) if hasattr(positions, "shape") else type(positions).__name__
        raise DataError(f"positions must be a torch tensor of shape [N, 3] in Å, got {shape}")


def _vector3(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.array(value, dtype=float)  # a copy: callers may pass views or read-only arrays
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what}: expected 3 finite numbers, got {value!r}")
    return arr


def _number(value: Any, what: str, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or (positive and x <= 0):
        kind = "a positive number" if positive else "a finite number"
        raise ConfigError(f"{what}: expected {kind}, got {value!r}")
    return x


def _check_keys(d: dict, required: tuple[str, ...], optional: tuple[str, ...],
                source: str | None = None) -> None:
    """The one configuration checker (:func:`fieldforce.config.check_keys`) on a field
    config: unknown keys (with the nearest valid one suggested), then missing ones."""
    check_keys(d, ("type", *required, *optional), required=required, source=source,
               what=f"field of type {d.get('type')!r}")


def _field_unit_factor(d: dict) -> float:
    """Factor from the config's ``units`` (default V/Å) to V/Å."""
    try:
        return parse_unit(d.get("units", "V/angstrom"), "field").factor
    except UnitError as err:
        raise ConfigError(f"field config key 'units': {err}") from None


def _floats(arr: np.ndarray) -> list[float]:
    return [float(x) for x in arr]


#: config ``type`` -> field class, filled as the field modules are imported.
_REGISTRY: dict[str, type[ExternalField]] = {}


def registered_types() -> dict[str, type[ExternalField]]:
    """Config ``type`` -> field class, for every field type with a config form."""
    import fieldforce.fields  # noqa: F401 - importing the package registers the built-ins

    return dict(_REGISTRY)


class ExternalField:
    """Base class: an external electric field E(r, t).

    What every field provides (units: Å, fs, V, V/Å):

    ``field(positions [N,3], time_fs) -> E [N,3]``
        The field at the atoms, same dtype/device as ``positions``. A non-uniform field is a
        differentiable torch function of positions, so models get dE/dr by autograd.
    ``is_uniform``
        True when E does not depend on position (it may still depend on time); such fields
        also give ``uniform_value(time_fs) -> E [3]``, which raises TypeError on others.
    ``has_potential`` and ``potential(positions [N,3], time_fs) -> phi [N] V``
        The electrostatic potential with E = -grad phi, differentiable w.r.t. positions, for
        models that couple to phi (charge equilibration: chi_i -> chi_i + phi(r_i)).
        ``has_potential`` is True exactly when ``potential`` works; otherwise ``potential``
        raises NotImplementedError. Gauge: phi is defined up to a constant. A uniform field
        uses phi = -E.r, zero at the Cartesian origin; a point charge's phi vanishes at
        infinity; a grid field's phi is the grid's own values. Adding a constant c to phi
        (moving a uniform field's zero from the origin to a point d adds c = E.d) leaves the
        energy sum_i q_i phi(r_i) of a neutral system unchanged, but shifts that of a
        charged system, total charge Q, by Q c: its absolute energy depends on the gauge.
    ``depends_on_time``
        False only when E (and phi) at a given position never changes with time, so results
        computed at one time stay valid at another. The base default is True ("assume it may
        change"): a wrong True only costs recomputation, a wrong False gives stale results.
        Every built-in field declares it explicitly.
    ``depends_on_atoms`` and ``update(atoms, time_fs) -> bool``
        False / a no-op returning False by default. A field whose values depend on the atoms
        themselves (e.g. a finite-element potential re-solved around a moving metal tip)
        sets ``depends_on_atoms = True`` and overrides ``update``; see :meth:`update`.

    Subclasses implement ``__call__``; uniform ones also ``uniform_value``; those with an
    electrostatic potential also ``potential`` (``has_potential`` then defaults to True).
    """

    config_type: str = ""
    # Config keys: required, optional, and the field vectors that a 'units' key rescales.
    _required: tuple[str, ...] = ()
    _optional: tuple[str, ...] = ()
    _scaled: tuple[str, ...] = ()

    #: Whether E(r) may change with time. True unless a subclass declares otherwise: the safe
    #: default, since a wrong True only costs cache invalidation. Override as a class
    #: attribute or property.
    depends_on_time: bool = True

    #: Whether the field's values depend on the atoms (it is re-solved by :meth:`update`).
    depends_on_atoms: bool = False

    #: For a field that depends on the atoms: one dict per re-solve, which an MD run logs
    #: in ``field.log`` (keys ``time_fs``, ``beta``, ``apex_height``, ``apex_field``,
    #: ``rms_displacement`` (None for the first), ``elements``, ``remeshed``,
    #: ``mesh_seconds``, ``solve_seconds``); empty for every other field. A subclass
    #: keeps its own list in the instance.
    history: Sequence[dict[str, Any]] = ()
    #: wall time spent in re-solves, s (None: the field does no solves)
    seconds: float | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every field with a config form is found by from_config. Only a class that declares
        # config_type itself registers: a subclass of a built-in (say an atom-dependent
        # UniformField) inherits the attribute but must not take over the built-in's type.
        kind = cls.__dict__.get("config_type", "")
        if kind:
            old = _REGISTRY.get(kind)
            if old is not None and (old.__module__, old.__qualname__) != (cls.__module__,
                                                                         cls.__qualname__):
                raise TypeError(f"field config type {kind!r} of {cls.__qualname__} is already "
                                f"taken by {old.__module__}.{old.__qualname__}")
            _REGISTRY[kind] = cls

    @property
    def is_uniform(self) -> bool:
        """True when E does not depend on position (it may still depend on time)."""
        return False

    @property
    def has_potential(self) -> bool:
        """True exactly when :meth:`potential` works (phi with E = -grad phi).

        Default: True when the subclass overrides ``potential``. Subclasses whose
        ``potential`` works only in some configurations override this property.
        """
        return type(self).potential is not ExternalField.potential

    def __call__(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        """Field at each atom: positions [N,3] Å -> E [N,3] V/Å (same dtype/device)."""
        raise NotImplementedError

    def uniform_value(self, time_fs: float = 0.0, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
        """The field vector [3] V/Å of a uniform field at ``time_fs``."""
        raise TypeError(f"{type(self).__name__} is not uniform; evaluate it at positions instead")

    def potential(self, positions: torch.Tensor, time_fs: float = 0.0) -> torch.Tensor:
        """Electrostatic potential phi [N] V at positions [N,3] Å, with E = -grad phi.

        Differentiable w.r.t. positions; raises NotImplementedError when ``has_potential`` is
        False. The gauge (additive constant) is described in the class docstring.
        """
        raise NotImplementedError(f"{type(self).__name__} has no electrostatic potential")

    def update(self, atoms: Atoms, time_fs: float = 0.0) -> bool:
        """Bring a field that depends on the atoms up to date; True when its values changed.

        The base implementation (every field with ``depends_on_atoms`` False) does nothing
        and returns False. The contract for fields that override it:

        - Caller: whoever evaluates the field for a simulation (the ASE calculator) calls
          ``update(atoms, time_fs)`` before every evaluation at new positions (or a new
          time), with the ASE ``Atoms`` being evaluated and the current simulation time in
          fs. Calling it again with unchanged atoms and time is cheap and returns False, so
          callers may call it whenever in doubt. ``update`` must not modify ``atoms``, and
          must copy whatever it keeps from them.
        - The field decides whether the atoms have moved enough to re-solve (e.g. a
          displacement threshold); if it re-solves it returns True, meaning values from
          ``__call__``/``potential`` may differ from before, so the caller must discard
          cached results computed with the old field. False means nothing changed.
        - Between updates the field is a fixed function of position (and time, if
          ``depends_on_time``). Forces from a model are the gradients of the energy in that
          fixed field; they do not include the change of the field with the atoms, so they
          are consistent with the energy only for the field as last solved.
        - Energy is not conserved across a re-solve: the field's change does work on the
          system, and the total energy jumps. A simulation should report it, e.g. by
          accumulating the energy at the same positions after minus before each update that
          returned True, so that drift from the integrator stays distinguishable.
        """
        return False

    def state(self) -> dict | None:
        """What a field that depends on the atoms needs to be rebuilt as it is now, for a
        restarted simulation (numpy arrays and floats), or None (the default: nothing).
        An MD run saves it with every trajectory frame and, resumed from that frame, hands
        it to :meth:`restore`."""
        return None

    def restore(self, atoms: Atoms, state: dict) -> None:
        """Rebuild the field from :meth:`state`'s output (``atoms``: the resumed
        structure). The default does nothing."""

    def to_dict(self) -> dict:
        """A YAML-friendly dict (internal units) that ``from_config`` turns back into this field."""
        d: dict[str, Any] = {"type": self.config_type}
        for key in self._required + self._optional:
            value = getattr(self, key, None)
            if value is not None:
                d[key] = _floats(value) if isinstance(value, np.ndarray) else value
        return d

    @classmethod
    def _from_dict(cls, d: dict, base_dir: Path | None) -> ExternalField:
        _check_keys(d, cls._required, cls._optional + (("units",) if cls._scaled else ()))
        kwargs = {k: v for k, v in d.items() if k not in ("type", "units")}
        factor = _field_unit_factor(d) if cls._scaled else 1.0
        for key in cls._scaled:
            kwargs[key] = _vector3(d[key], f"field config key {key!r}") * factor
        return cls(**kwargs)

    @staticmethod
    def from_config(d: dict, base_dir: str | Path | None = None) -> ExternalField:
        """Build a field from a config dict such as ``{type: static, vector: [0, 0, 0.1]}``.

        ``base_dir`` resolves relative file paths (the directory of the YAML file).
        """
        where = config_source()
        if not isinstance(d, dict) or "type" not in d:
            raise ConfigError(f"{where}: a field config must be a mapping with a 'type' key, "
                              f"got {d!r}")
        if d["type"] not in _REGISTRY:
            raise ConfigError(f"{where}: unknown field type {d['type']!r}"
                              f"{suggestion(d['type'], _REGISTRY)}; valid types: "
                              f"{', '.join(_REGISTRY)}")
        return _REGISTRY[d["type"]]._from_dict(d, Path(base_dir) if base_dir is not None
                                               else None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"
