"""The model contract: every family is a :class:`FieldModel` that declares what it makes.

A family is a subclass with a class attribute ``family = "name"``; defining the class
registers it, so ``build_model({"family": "name", ...})`` builds it and ``load_model``
reads it back, with no edit anywhere else (the way ``fields/`` registers field types).
The class declares, from the canonical label table (:mod:`fieldforce.data.labels`):

==========================  =============================================================
``settings_class``          its ``model:`` configuration section (a
                            :class:`~fieldforce.config.Section` with documented defaults)
``outputs``                 what ``forward`` returns besides ``energy``: :class:`Output`
                            declarations (name, per atom or per structure, shape, unit,
                            the label it is trained and scored against, its role)
``field_support``           the fields it accepts: ``"none"``, ``"uniform"`` or
                            ``"nonuniform"`` (a field that varies from atom to atom)
``needs_potential``         it couples to the external *potential* phi_ext at the atoms
                            (charge equilibration), passed to ``forward`` as
                            ``atom_potential`` [N] V
``has_charges``             it predicts ``charges`` [N] e, and so Born charges (an
                            instance property: a family may switch its charges off)
``default_loss_weights``    loss weights when a training file gives none
``fitting``                 ``"gradient"`` (epochs of gradient descent) or
                            ``"closed_form"`` (one call of :meth:`FieldModel.fit`, e.g.
                            kernel heads)
``head``                    which heads the class implements (``"neural"`` by default):
                            a family may register one class per head (``model: {family:
                            response, head: gpr}``), each with its own settings
==========================  =============================================================

The calculator, ``fieldforce train``, ``fieldforce eval``, the MD trajectory writer and
the model file iterate over these declarations (:meth:`FieldModel.output_specs`), so a
new output (an uncertainty, say) appears in calculator results, eval JSON and trajectory
frames without an edit outside its family's file.

``model(batch, atom_field, **options) -> dict``: ``energy`` [B] eV always, the declared
outputs where the family has them. Forces, stress and Born charges come from the one
autograd helper (:func:`fieldforce.models.derivatives.evaluate`), never from the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fieldforce.config import Section, option, suggestion
from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS
from fieldforce.errors import ConfigError, DataError
from fieldforce.units import INTERNAL_UNITS

#: output roles: where an output is reported
ROLES = ("property", "component", "detail")
FIELD_SUPPORT = ("none", "uniform", "nonuniform")
FITTING = ("gradient", "closed_form")


@dataclass(frozen=True)
class Output:
    """One declared output of a model family.

    ``role`` says where it is reported:

    * ``"property"`` — a physical result: in the calculator's results, in every MD
      trajectory frame, and in ``fieldforce eval`` (scored against ``label`` when the
      data have it; an output without a canonical label, such as an uncertainty, is
      summarised instead: mean, RMS, max);
    * ``"component"`` — a part of a property (U0, the short- and long-range energies):
      calculator results only;
    * ``"detail"`` — a per-atom decomposition (atomic dipoles): calculator results with
      ``per_atom=True`` only.

    ``periodic_only``: defined only for periodic structures (polarization).
    ``on_request``: computed only when asked for (extra cost: Born charges; a family's own
    such outputs are asked for by name through ``forward(..., requests={name})``).
    ``requires_charges``: produced only by models whose ``has_charges`` is true.
    """

    name: str
    per_atom: bool
    shape: tuple[int, ...]
    dimension: str
    description: str
    label: str | None = None
    role: str = "property"
    periodic_only: bool = False
    on_request: bool = False
    requires_charges: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"output {self.name!r}: role must be one of {ROLES}")
        if self.dimension not in INTERNAL_UNITS:
            raise ValueError(f"output {self.name!r}: unknown dimension {self.dimension!r}")
        if self.label is not None and self.label not in LABELS:
            raise ValueError(f"output {self.name!r}: {self.label!r} is not a canonical label")

    @property
    def unit(self) -> str:
        """Internal unit of the values."""
        return INTERNAL_UNITS[self.dimension]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        d["unit"] = self.unit
        return d


def output(name: str, *, like: str | None = None, per_atom: bool | None = None,
           description: str | None = None, role: str = "property",
           periodic_only: bool = False, on_request: bool = False,
           requires_charges: bool = False, dimension: str | None = None,
           shape: tuple[int, ...] | None = None) -> Output:
    """An :class:`Output` declared from the canonical label table.

    ``output("dipole")``: the canonical label itself (trained and scored against it).
    ``output("dipole_uncertainty", like="dipole")``: a new quantity with the shape and
    unit of ``like``. ``output("atomic_dipoles", like="dipole", per_atom=True,
    role="detail")``: the per-atom parts of ``like``. A quantity unlike any label gives
    its own ``dimension`` (a key of ``fieldforce.units.INTERNAL_UNITS``), ``shape`` and
    ``per_atom`` (e.g. a dimensionless per-atom score).
    """
    base = LABELS.get(like or name)
    if base is None and dimension is None:
        raise ValueError(f"output {name!r}: {like or name!r} is not a canonical label; give "
                         f"like= one of {', '.join(LABELS)}, or its own dimension")
    return Output(name=name,
                  per_atom=bool(per_atom if per_atom is not None else base.per_atom),
                  shape=tuple(shape if shape is not None else base.shape),
                  dimension=dimension or base.dimension,
                  description=description or (base.description if base else name),
                  label=name if name in LABELS else None, role=role,
                  periodic_only=periodic_only, on_request=on_request,
                  requires_charges=requires_charges)


#: the per-atom novelty score of the shared backbone (see Backbone.extrapolation)
EXTRAPOLATION = output("extrapolation", per_atom=True, shape=(), dimension="dimensionless",
                       description="how far the atom's descriptor lies outside the training "
                                   "range, in training standard deviations (0 inside)")


#: what every model yields through the autograd helper, whatever its family
BASE_OUTPUTS = (
    output("energy", description="potential energy U(R, E) at the applied field"),
    output("forces", description="-dU/dr_i plus any non-gradient field force"),
    output("stress", on_request=True, periodic_only=True, description="(1/V) dU/dstrain"),
)
#: what the autograd helper adds for models with charges
CHARGE_OUTPUTS = (
    output("born_charges", on_request=True, requires_charges=True,
           description="Z*_i,ab = V dP_a/dr_ib, acoustic sum rule on"),
)


# -- the model section of a training file ---------------------------------------------------


@dataclass(kw_only=True)
class ModelSettings(Section):
    """The ``model:`` section every family's settings extend: which family it is."""

    section: ClassVar[str] = "model"
    #: values for keys that model files written before the key existed do not hold
    #: (their models were built without it); a new default must not change an old file
    file_defaults: ClassVar[dict[str, Any]] = {}
    family: str = option("response", "model family (fieldforce.models.families())")
    head: str = option("neural", "the heads that map descriptors to energies, dipoles and "
                       "polarizabilities: neural (networks, gradient descent) or gpr "
                       "(sparse Gaussian-process regression, closed-form fit with "
                       "uncertainties; families that offer it)")


# -- the registry --------------------------------------------------------------------------

#: family name -> head -> class, filled as the family classes are defined.
_FAMILIES: dict[str, dict[str, type[FieldModel]]] = {}


def families() -> list[str]:
    """Names of the registered model families."""
    return sorted(_FAMILIES)


def heads(name: str) -> list[str]:
    """The heads family ``name`` registers (neural first)."""
    return sorted(_FAMILIES.get(name, {}), key=lambda h: (h != "neural", h))


def family_class(name: Any, source: str | None = None, head: Any = None
                 ) -> type[FieldModel]:
    """The class registered as family ``name`` with heads ``head`` (None: neural); a
    ConfigError listing the others if none."""
    where = f"{source}: " if source else ""
    if not isinstance(name, str) or name not in _FAMILIES:
        raise ConfigError(f"{where}unknown model family {name!r}"
                          f"{suggestion(name, families())}; available: "
                          f"{', '.join(families())}")
    heads = _FAMILIES[name]
    head = "neural" if head is None else head
    if not isinstance(head, str) or head not in heads:
        raise ConfigError(f"{where}model.head: the {name!r} family has no {head!r} heads"
                          f"{suggestion(head, sorted(heads))}; it offers: "
                          f"{', '.join(sorted(heads))}")
    return heads[head]


def file_config(cls: type[FieldModel], config: dict) -> dict:
    """A model section read from a model file, completed with ``cls``'s ``file_defaults``
    for the keys the file predates (a section, such as the descriptor, key by key)."""
    defaults = getattr(cls.settings_class, "file_defaults", {})
    merged = {**defaults, **config}
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merged[key] = {**value, **config[key]}
    return merged


def model_settings(config: dict | None, source: str | None = None) -> Section:
    """The ``model:`` section ``config`` checked against its family's settings."""
    config = dict(config or {})
    cls = family_class(config.get("family", "response"), source, config.get("head"))
    config.setdefault("family", cls.family)
    return cls.settings_class.from_dict(config, source=source, prefix="model")


class FieldModel(nn.Module):
    """Base class of every model family (see the module docstring).

    Subclasses set the class attributes below and implement :meth:`forward`; the other
    methods have working defaults. ``__init__(config)`` checks ``config`` (the ``model:``
    section as a mapping) against ``settings_class`` and keeps both the checked settings
    (``self.settings``) and their plain form (``self.config``, what the model file stores).
    """

    family: ClassVar[str] = ""
    settings_class: ClassVar[type[Section]] = ModelSettings
    outputs: ClassVar[tuple[Output, ...]] = ()
    field_support: ClassVar[str] = "nonuniform"
    needs_potential: ClassVar[bool] = False
    default_loss_weights: ClassVar[dict[str, float]] = {"energy": 1.0, "forces": 100.0}
    fitting: ClassVar[str] = "gradient"
    head: ClassVar[str] = "neural"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if ("family" not in cls.__dict__ and "head" not in cls.__dict__) or not cls.family:
            return  # an abstract intermediate class, or a subclass of a family
        if cls.field_support not in FIELD_SUPPORT:
            raise TypeError(f"{cls.__name__}.field_support must be one of {FIELD_SUPPORT}")
        if cls.fitting not in FITTING:
            raise TypeError(f"{cls.__name__}.fitting must be one of {FITTING}")
        unknown = set(cls.default_loss_weights) - set(LABELS)
        if unknown:
            raise TypeError(f"{cls.__name__}.default_loss_weights: {sorted(unknown)} are not "
                            "canonical labels")
        known = _FAMILIES.get(cls.family, {}).get(cls.head)
        if known is not None and (known.__module__, known.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise TypeError(f"model family {cls.family!r} with {cls.head!r} heads is already "
                            f"registered by {known.__module__}.{known.__qualname__}")
        _FAMILIES.setdefault(cls.family, {})[cls.head] = cls

    #: extrapolation (per-atom score, see the ``extrapolation`` output) above which the
    #: calculator warns that a structure lies outside the training data. On the shipped
    #: water data (demo model) held-out frames reach 2.3 and trimer MD at 300 K 3-4 while
    #: it stays compact; a trimer compressed by 10 % scores 6.4, one whose O-O distance
    #: shrank to 2.25 Å 7.7 (seen in the demo's MD) and one with an O-H bond doubled 5.0
    extrapolation_threshold: ClassVar[float] = 5.0

    def __init__(self, config: dict | Section | None = None) -> None:
        super().__init__()
        # the largest field of the training data, V/Å (inf: not recorded, e.g. an old file)
        self.register_buffer("domain_max_field", torch.tensor(math.inf, dtype=torch.float64))
        if isinstance(config, Section):
            config = config.to_dict()
        config = dict(config or {})
        config.setdefault("family", self.family)
        self.settings = self.settings_class.from_dict(config, prefix="model")
        if getattr(self.settings, "family", self.family) != self.family:
            raise ConfigError(f"model family {self.settings.family!r} given to the "
                              f"{self.family!r} model")
        if getattr(self.settings, "head", self.head) != self.head:
            raise ConfigError(f"model.head {self.settings.head!r} given to the {self.family!r} "
                              f"model with {self.head!r} heads")
        self.config: dict[str, Any] = self.settings.to_dict()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # model files written before the training domain was recorded: leave it unknown
        state_dict.setdefault(prefix + "domain_max_field", self.domain_max_field)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- the training domain --------------------------------------------------------------

    @property
    def species(self) -> list[int] | None:
        """Atomic numbers the model knows (None: any); those of its backbone if it has one."""
        backbone = getattr(self, "backbone", None)
        return None if backbone is None else list(backbone.species)

    def check_species(self, numbers, where: str = "the structure") -> None:
        """A DataError naming the elements of ``numbers`` the model was never trained on."""
        known = self.species
        if known is None:
            return
        from ase.data import chemical_symbols

        unknown = sorted(set(int(z) for z in numbers) - set(known))
        if unknown:
            names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unknown)
            raise DataError(f"{where} has {names}, which the {self.family!r} model was never "
                            f"trained on (it knows {', '.join(chemical_symbols[z] for z in known)}"
                            "); retrain it with data that contain them, or remove those atoms")

    def record_domain(self, frames: Sequence[Frame]) -> None:
        """Remember what the training frames covered (their largest field), for the
        warnings of the calculator and MD."""
        largest = max((float(np.linalg.norm(f.efield)) for f in frames), default=0.0)
        self.domain_max_field.fill_(largest)

    def domain(self) -> dict[str, Any]:
        """The training domain as plain values (the model file keeps it): species, largest
        training field (V/Å; None: not recorded), extrapolation threshold."""
        field = float(self.domain_max_field)
        return {"species": self.species, "max_field": field if math.isfinite(field) else None,
                "extrapolation_threshold": self.extrapolation_threshold}

    # -- declarations ---------------------------------------------------------------------

    @property
    def has_charges(self) -> bool:
        """Whether the model predicts ``charges`` (and so dipoles from them and Born charges)."""
        return any(o.name == "charges" for o in self.outputs)

    def output_specs(self) -> tuple[Output, ...]:
        """Everything this model yields: the base outputs, its family's, and Born charges
        when it has charges (outputs that need charges are dropped when it has none)."""
        specs = BASE_OUTPUTS + tuple(self.outputs) + CHARGE_OUTPUTS
        return tuple(o for o in specs if self.has_charges or not o.requires_charges)

    def requestable(self) -> set[str]:
        """The family's own ``on_request`` outputs (computed when named in ``requests``)."""
        return {o.name for o in self.outputs if o.on_request}

    def output_spec(self, name: str) -> Output | None:
        return next((o for o in self.output_specs() if o.name == name), None)

    def trainable_labels(self) -> set[str]:
        """Canonical labels that this model's outputs can be trained and scored against."""
        return {o.label for o in self.output_specs() if o.label is not None}

    # -- fitting ---------------------------------------------------------------------------

    def fit_statistics(self, frames: Sequence[Frame]) -> None:
        """Set data-dependent constants (feature standardisation, energy baseline, output
        scales) from the training frames before fitting. Default: nothing."""

    def fit(self, frames: Sequence[Frame], weights: dict[str, float]) -> dict:
        """Closed-form fit on ``frames`` (``fitting = "closed_form"`` families); returns
        what the fit wants recorded in metrics.json (e.g. the regularisation chosen)."""
        raise NotImplementedError(f"the {self.family!r} family is fitted by gradient descent")

    def settle(self, frames: Sequence[Frame], terms: Sequence[str]) -> dict | None:
        """After training on ``frames`` with the loss terms ``terms``: resolve what the data
        left undetermined (e.g. the global sign of latent charges at zero field) and say
        what was decided (recorded in metrics.json), or None. Default: nothing."""
        return None

    def calibrate(self, frames: Sequence[Frame]) -> dict[str, float] | None:
        """Scale the model's predicted uncertainties so that they match its errors on
        ``frames`` (the validation set); returns the factors, or None (no uncertainties:
        the default)."""
        return None

    def prepare_training(self, frames: Sequence[Frame]) -> Any:
        """A cache the family wants built once per training run (e.g. descriptors of fixed
        geometries); handed back to :meth:`training_options`. Default: None."""
        return None

    def training_options(self, frames: Sequence[Frame], terms: Sequence[str], cache: Any,
                         train: bool) -> dict[str, Any]:
        """Extra keyword arguments of ``forward`` for a training batch of ``frames`` with
        the loss terms ``terms`` on (``train`` False: validation). Default: none."""
        return {}

    # -- forces that are not gradients ---------------------------------------------------

    def extra_forces(self, batch, positions: torch.Tensor, atom_field: torch.Tensor,
                     out: dict[str, torch.Tensor], create_graph: bool = False
                     ) -> torch.Tensor | None:
        """Forces [N, 3] eV/Å added to -dU/dr (e.g. Z*^T E in a periodic cell); None: none."""
        return None


__all__ = ["BASE_OUTPUTS", "CHARGE_OUTPUTS", "EXTRAPOLATION", "FieldModel", "ModelSettings",
           "Output", "families", "family_class", "file_config", "heads", "model_settings",
           "output"]
