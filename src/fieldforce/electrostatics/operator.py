"""The Coulomb matrix of one geometry as a linear operator on charges, built once.

Iterative charge solvers (charge equilibration) apply the Coulomb matrix many
times per MD step to different charge vectors at the same positions. Everything
that depends on the geometry alone is done once, when the operator is built:
the input checks, the method and splitting parameters, the vesin neighbour lists
with their pair distances (in the autograd graph of the positions and the cell),
the Gaussian-width pair kernel and the cached torch-pme calculator. Each
application then runs only the charge-dependent sums of torch-pme (real space
over the stored pairs, reciprocal space, self, background and slab terms).
Conventions and units are those of :mod:`fieldforce.electrostatics.coulomb`,
whose :func:`~fieldforce.electrostatics.coulomb.coulomb_potential` is this
operator built and applied once.
"""

from __future__ import annotations

import torch

from fieldforce.electrostatics.coulomb import (
    _calculator,
    _check_charges,
    _check_geometry,
    _pbc_tensor,
    _resolve_method,
    check_slab,
    direct_matrix,
    pair_potential,
    real_space_pairs,
    width_correction_pairs,
)
from fieldforce.electrostatics.parameters import SplittingParameters, splitting_parameters
from fieldforce.errors import DataError


class CoulombOperator:
    """phi = A q for one geometry: the Coulomb potential at the atoms as a linear map.

    Parameters
    ----------
    positions
        [N, 3] Å. Give it ``requires_grad`` (or let it come out of a model) for forces:
        the pair distances keep it in their autograd graph.
    cell
        [3, 3] Å, rows are lattice vectors; needed when any ``pbc``.
    pbc
        bool or [3] bools: none (isolated), all (3D periodic) or two (slab).
    method, accuracy, widths, cutoff
        as in :func:`~fieldforce.electrostatics.coulomb.coulomb_potential`: ``direct``,
        ``ewald``, ``pme``, ``p3m`` or ``auto``; target accuracy; [N] Gaussian widths
        (standard deviations, Å; None for point charges); real-space cutoff (Å).

    Applying it, ``operator(charges)`` (or ``operator.potential(charges)``) maps
    charges [N] e to phi [N] V, or [N, C] to [N, C] (C independent charge sets in
    one call). It is linear in the charges and differentiable with respect to them
    and, through the stored graph, to the positions and cell it was built from;
    it gives the numbers :func:`coulomb_potential` gives, whose code path it is.
    :meth:`energy` is 1/2 q·A q in eV, :meth:`matrix` the dense A in V/e.

    Built once per geometry, the operator is valid only for the positions and
    cell it was built at (it keeps copies): rebuild it when atoms move. A charged
    periodic cell (sum q != 0) gets the uniform neutralising background, and a
    charged slab Ballenegger's terms, exactly as in :func:`coulomb_potential`;
    isolated systems have no self term (A_ii = 0).

    All applications share the autograd graph from the positions to the stored
    distances: backpropagate through it once (or pass ``retain_graph=True``), and
    run the iterations of a solver under ``torch.no_grad()`` when their graph is not
    needed, so that it does not grow with every application.

    Attributes
    ----------
    method
        the resolved method (``auto`` replaced).
    n_atoms
        N.
    pbc
        [3] bool numpy array: the periodic directions.
    params
        :class:`~fieldforce.electrostatics.parameters.SplittingParameters` of a
        periodic sum, None for ``direct``.
    """

    def __init__(
        self,
        positions: torch.Tensor,
        cell: torch.Tensor | None = None,
        pbc=False,
        method: str = "auto",
        accuracy: float = 1e-6,
        widths: torch.Tensor | None = None,
        cutoff: float | None = None,
    ) -> None:
        pbc_t = _pbc_tensor(pbc)
        if cell is None:
            cell = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device)
        _check_geometry(positions, cell, pbc_t, widths)
        self.n_atoms = positions.shape[0]
        self.method = _resolve_method(method, pbc_t, cell, self.n_atoms, accuracy)
        self.params: SplittingParameters | None = None
        # copies (in the graph): moving the caller's tensors in place cannot change us
        self._positions, self._cell = positions.clone(), cell.clone()
        self.pbc = pbc_t.detach().cpu().numpy().astype(bool)
        self._matrix: torch.Tensor | None = None
        self._width_pairs: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.method == "direct":
            self._matrix = direct_matrix(self._positions, widths)
            return
        self._periodic = None
        if not pbc_t.all():
            check_slab(positions, cell, pbc_t)
            self._periodic = pbc_t.to(positions.device)
        if cutoff is None:
            self.params = splitting_parameters(self.method, accuracy, self.n_atoms,
                                               cell.detach().cpu().numpy())
        else:
            self.params = SplittingParameters.for_accuracy(accuracy, cutoff, self.method)
        self._pairs, self._distances = real_space_pairs(self._positions, self._cell,
                                                        self.params.cutoff)
        self._calculator = _calculator(self.params, positions.dtype, str(positions.device))
        if widths is not None and float(widths.detach().max()) > 0:
            self._width_pairs = width_correction_pairs(self._positions, self._cell, widths)

    def potential(self, charges: torch.Tensor) -> torch.Tensor:
        """phi = A q: [N] V for charges [N] e, [N, C] for [N, C]."""
        _check_charges(charges, self.n_atoms)
        if charges.dtype != self._positions.dtype:
            raise DataError(f"charges are {charges.dtype} but the operator was built for "
                            f"{self._positions.dtype} positions")
        q = charges[:, None] if charges.ndim == 1 else charges
        if self._matrix is not None:
            phi = self._matrix @ q
        else:
            # torch-pme's per-atom "potential" carries the 1/2 of the energy
            phi = 2 * self._calculator(q, self._cell, self._positions, self._pairs,
                                       self._distances, self._periodic)
            if self._width_pairs is not None:
                phi = phi + pair_potential(*self._width_pairs, q)
        return phi[:, 0] if charges.ndim == 1 else phi

    __call__ = potential

    @property
    def geometry(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The positions [N, 3] Å and cell [3, 3] Å it was built at (detached)."""
        return self._positions.detach(), self._cell.detach()

    def energy(self, charges: torch.Tensor) -> torch.Tensor:
        """U = 1/2 sum_i q_i phi_i in eV: a scalar for charges [N], [C] for [N, C]."""
        return 0.5 * (charges * self.potential(charges)).sum(0)

    def matrix(self) -> torch.Tensor:
        """The dense Coulomb matrix A [N, N] in V/e (phi = A q), symmetric.

        Isolated systems: the direct kernel built with the operator, returned as is
        (zero diagonal). Periodic cells: the operator applied to the N columns of the
        identity in one call with N charge channels, which costs about N applications
        at once: O(N²) time and memory for the real-space part, O(N² K) time and O(N K)
        memory for Ewald's K k-vectors, O(N M log M) time and O(N M) memory for a
        PME/P3M mesh of M points. For large N prefer applying the operator.
        Symmetric to rounding; its diagonal holds the interaction of each unit charge
        with its own periodic images and background.
        """
        if self._matrix is not None:
            return self._matrix
        eye = torch.eye(self.n_atoms, dtype=self._positions.dtype,
                        device=self._positions.device)
        return self.potential(eye)

    def __repr__(self) -> str:
        return f"CoulombOperator(n_atoms={self.n_atoms}, method={self.method!r})"
