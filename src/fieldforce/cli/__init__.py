"""Command-line interface (``fieldforce``; layer 8): argument parsing only, each
subcommand calling a workflow, simulation, analysis or pipeline function."""
