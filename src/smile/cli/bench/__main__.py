"""``python -m smile.cli.bench``: the same as ``smile-bench``."""

from smile.cli.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
