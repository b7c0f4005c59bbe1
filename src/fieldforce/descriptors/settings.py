"""The descriptor settings (SOAP / lambda-SOAP hyper-parameters): the one set of defaults.

Every model family's ``model.descriptor`` section is a :class:`DescriptorSettings`; its
defaults (cutoff 4 Å, max_radial 4, max_angular 3, Gaussian width 0.3 Å) are the ones
every family uses unless a configuration says otherwise. ``fieldforce config descriptor``
prints them with their documentation. This module imports no featomic, so configuration
files can be checked without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fieldforce.config import Section, option


@dataclass(kw_only=True)
class DescriptorSettings(Section):
    """Hyper-parameters of the SOAP / lambda-SOAP descriptors (featomic).

    ``species`` fixes the feature layout (a model sets it to its own species).
    ``feature_scale``: every feature is divided by it (dimensionless). featomic's densities
    are already normalised: with the defaults liquid water gives invariants up to about
    1.6 and lambda-SOAP components up to about 0.5, so 1.0 keeps them O(1); raise it for
    much denser environments or larger cutoffs.

    ``species_channels``: None resolves the density on every neighbour species (the
    power spectrum then has one block per species pair: T (T + 1) / 2 blocks for T
    species, 36 for 8). K mixes the T species densities into K channels with a learned
    [T, K] matrix before the products (a compressed species channel, as in Willatt,
    Musil and Ceriotti 2018 or MACE's species embedding): K (K + 1) / 2 blocks, whatever
    the number of species.

    ``radial_scaling``: [r0, m] weights each neighbour's Gaussian by 1 / (1 + (r/r0)^m),
    so the near shell dominates the features (Willatt, Musil and Ceriotti, PCCP 20,
    29661 (2018)); m is an integer (featomic's exponent). ``radial_scaling_scope``
    "invariant" applies it to the power spectrum only (the energy path's features): the
    lambda-SOAP that dipoles and polarizabilities are built from then see the unweighted
    density (a second featomic expansion where equivariants are needed; "all", the
    default, weights both).

    ``radial_basis``: "gto" (the default) or "bessel", the spherical Bessel functions
    j0(n pi r / cutoff) of MACE and NequIP, splined by featomic (the same count,
    max_radial + 1, for every l, so the features keep their layout). On the water
    clusters neither option beat the defaults everywhere (BENCHMARKS.md, issue 13).
    """

    section: ClassVar[str] = "descriptor"
    #: the values of keys added after the first model files (which were built without
    #: them): a changed default must not change an old file's features
    file_defaults: ClassVar[dict[str, Any]] = {"species_channels": None,
                                                "radial_basis": "gto",
                                                "radial_scaling": None,
                                                "radial_scaling_scope": "all"}
    # legacy (rascaline / featomic < 0.6) spellings accepted in configuration files
    aliases: ClassVar[dict[str, str]] = {
        "radius": "cutoff",
        "cutoff_radius": "cutoff",
        "atomic_gaussian_width": "density_width",
        "cutoff_smoothing_width": "smoothing_width",
    }

    cutoff: float = option(4.0, "cutoff radius, Å (featomic cutoff.radius)",
                           exclusive_minimum=0)
    smoothing_width: float = option(0.5, "width of the shifted-cosine smoothing at the "
                                    "cutoff, Å", minimum=0)
    density_width: float = option(0.3, "width of the Gaussian atomic densities, Å",
                                  exclusive_minimum=0)
    max_radial: int = option(4, "largest radial (GTO) index: max_radial + 1 radial "
                             "functions", minimum=0)
    max_angular: int = option(3, "largest angular channel l of the density expansion "
                              "(>= 2: lambda = 2 features need l up to 2)", minimum=2)
    species: list[int] = option([1, 8], "atomic numbers the features are resolved on",
                                non_empty=True, minimum=1, maximum=118)
    feature_scale: float = option(1.0, "every feature is divided by this constant",
                                  exclusive_minimum=0)
    species_channels: int | None = option(None, "mix the neighbour species into this many "
                                          "learned channels (None: one per species)",
                                          minimum=1)
    radial_basis: str = option("gto", "radial functions: 'gto' (featomic's Gaussian-type "
                               "orbitals) or 'bessel' (j0(n pi r / cutoff), MACE's and "
                               "NequIP's basis; splined by featomic, ~3 s to set up)",
                               choices=("gto", "bessel"))
    radial_scaling: list[float] | None = option(
        None, "[r0 (Å), m]: each neighbour's density weighted by 1 / (1 + (r / r0)^m) "
        "(Willatt, Musil and Ceriotti 2018); None: unweighted", exclusive_minimum=0,
        expected="null or a list [r0, m] of two positive numbers",
        check=lambda v: v is None or len(v) == 2)
    radial_scaling_scope: str = option(
        "all", "features the radial scaling weights: 'all', or 'invariant' (the power "
        "spectrum only; lambda-SOAP from the unweighted density)",
        choices=("all", "invariant"))

    def check(self) -> None:
        self.species = sorted(set(self.species))
        if self.smoothing_width >= self.cutoff:
            raise self.invalid("smoothing_width", f"a width in [0, cutoff = {self.cutoff:g})")

    @property
    def separate_equivariant_density(self) -> bool:
        """Whether lambda-SOAP come from a density of their own (unweighted, while the
        power spectrum's is radially scaled)."""
        return self.radial_scaling is not None and self.radial_scaling_scope == "invariant"

    def featomic_hypers(self, scaled: bool = True) -> dict[str, Any]:
        """Hyper-parameters in featomic's (>= 0.6) format for SOAP calculators (class-based
        ones, from featomic's spliner, for the Bessel basis); ``scaled=False`` leaves the
        radial scaling out."""
        density: dict[str, Any] = {"type": "Gaussian", "width": float(self.density_width)}
        if self.radial_scaling is not None and scaled:
            # featomic's Willatt2018 form c / (c + (r / r0)^m) with c = 1
            r0, m = self.radial_scaling
            density["scaling"] = {"type": "Willatt2018", "rate": 1.0, "scale": float(r0),
                                  "exponent": int(m)}
        if self.radial_basis == "bessel":
            return self._bessel_hypers(density.get("scaling"))
        return {
            "cutoff": {
                "radius": float(self.cutoff),
                "smoothing": {"type": "ShiftedCosine", "width": float(self.smoothing_width)},
            },
            "density": density,
            "basis": {
                "type": "TensorProduct",
                "max_angular": int(self.max_angular),
                "radial": {"type": "Gto", "max_radial": int(self.max_radial)},
            },
        }

    def _bessel_hypers(self, scaling: dict[str, Any] | None) -> dict[str, Any]:
        """featomic's splined radial integrals of the Gaussian density on the spherical
        Bessel functions j0(z_n r / cutoff) (z_n the zeros of j0: sin(n pi r / r_c) / r,
        orthonormalised by featomic), the same for every l (a tensor-product basis, so the
        density keeps its dense [2l+1, T, max_radial+1] layout). ``scaling``: the
        Willatt2018 dict of :meth:`featomic_hypers`, or None."""
        from featomic import basis, cutoff, density
        from featomic.splines import SoapSpliner

        if scaling is not None:
            scaling = density.Willatt2018(**{k: v for k, v in scaling.items() if k != "type"})
        spliner = SoapSpliner(
            cutoff=cutoff.Cutoff(radius=float(self.cutoff),
                                 smoothing=cutoff.ShiftedCosine(
                                     width=float(self.smoothing_width))),
            density=density.Gaussian(width=float(self.density_width), scaling=scaling),
            basis=basis.TensorProduct(
                max_angular=int(self.max_angular),
                radial=basis.SphericalBessel(angular_channel=0,
                                             max_radial=int(self.max_radial),
                                             radius=float(self.cutoff)),
                spline_accuracy=1e-8))
        return spliner.get_hypers()
