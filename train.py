"""Pretraining: `python train.py [experiment=<name>] [key=value ...]` (see README)."""

from smile.train import cli

if __name__ == "__main__":
    cli()
