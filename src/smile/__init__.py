"""smile: masked video pretraining (VideoMAE, SMILE) with PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
