"""Pipelines (layer 7): what chains the workflows, e.g. the demo (train -> MD -> analyse)."""
