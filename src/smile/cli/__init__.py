"""Console entry points (data preparation, checkpoint conversion, benchmarks).

Each module exposes ``main(argv=None) -> int``; ``pyproject.toml`` maps the console scripts to them
(e.g. ``smile-data = "smile.cli.data:main"``).
"""
