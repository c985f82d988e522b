"""Evaluation: `python eval.py experiment=<finetune experiment> ckpt=<checkpoint> [key=value ...]` (see README)."""

from smile.eval import cli

if __name__ == "__main__":
    cli()
