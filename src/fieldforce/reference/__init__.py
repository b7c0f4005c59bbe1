"""DFT labelling under finite fields (layer 5, workflows): the backend contract and
registry (:mod:`~fieldforce.reference.backend`), PySCF for molecules and clusters, GPAW
for periodic slabs, the resumable labelling workflow
(:mod:`~fieldforce.reference.labelling`) and the relabelling of a GPAW set's energies with
another energy flavour (:mod:`~fieldforce.reference.reenergize`)."""
