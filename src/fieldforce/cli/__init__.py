"""Command-line interface (``fieldforce``)."""
