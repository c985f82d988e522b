"""Silence third-party notices that are wrong or pure noise for this project, each with its reason.

``import smile.quiet`` (done by ``smile.train`` and ``smile.eval``) installs the filters once; every
filter matches one message, so any other warning still reaches the user. :func:`install` is
idempotent and may be called again (tests do, after resetting the warnings filters).
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["LITLOGGER_TIP", "NOT_RESUMABLE", "install"]

# Lightning warns when a run resumes mid-epoch and the DataLoader has no ``state_dict``. Our resume
# is exact without it: ``VideoDataModule.state_dict`` stores where the ``ResumableSampler`` stands
# (epoch, clips consumed) in every checkpoint and resumes the sampler from it, so the resumed run
# sees the same clips as an uninterrupted one (tests/test_train.py checks bit-identical resumes).
# Making the loader itself stateful would hand the same job to Lightning a second time.
NOT_RESUMABLE = r"You're resuming from a checkpoint that ended before the epoch ended and your dataloader is"

# Lightning 2.6 prints an advertisement for its cloud logger (``💡 Tip: ... litlogger``) on every
# trainer construction, whatever loggers the run has; it is logged through the rank-zero logger.
LITLOGGER_TIP = "litlogger"
_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropMessage(logging.Filter):
    """Drops the log records whose message contains ``text``; every other record passes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def install() -> None:
    """Install the targeted warning and logging filters (idempotent)."""
    warnings.filterwarnings("ignore", message=NOT_RESUMABLE)
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.text == LITLOGGER_TIP for f in logger.filters):
            logger.addFilter(_DropMessage(LITLOGGER_TIP))


install()
