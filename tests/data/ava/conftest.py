"""A synthetic AVA written once per session (read-only: tests that break files copy it first)."""

from __future__ import annotations

import pytest

from smile.data.ava import SyntheticAva, write_synthetic_ava


@pytest.fixture(scope="session")
def ava_synth(tmp_path_factory: pytest.TempPathFactory) -> SyntheticAva:
    """3 videos x 5 s: train synth000000 (902, 903; 904 excluded) and synth000001 (902-904), val synth000002."""
    return write_synthetic_ava(tmp_path_factory.mktemp("ava"), num_videos=3, seconds=5, seed=0)
