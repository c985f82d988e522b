"""Pretraining: `python train.py [experiment=<name>] [key=value ...]` (see README)."""

from smile.train import main

if __name__ == "__main__":
    main()
