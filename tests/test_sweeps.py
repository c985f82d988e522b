"""Issue 13, item 11: Hydra's submitit launcher and Optuna sweeper on the synthetic data, on CPU."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

import smile.train
from smile.build import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the `slurm` extra (hydra-submitit-launcher)")
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the `optuna` extra (hydra-optuna-sweeper)")

# Optuna needs the task function to return the objective. Until `smile.train.main` returns the run's
# final train/loss, the sweep runs through this equivalent entry point.
_WRAPPER = f"""
import hydra
from smile.train import run

@hydra.main(version_base="1.3", config_path={CONFIG_DIR!r}, config_name="train")
def main(cfg):
    return run(cfg)["loss"]["last"]

if __name__ == "__main__":
    main()
"""


def _train_script(tmp_path: Path) -> Path:
    """``train.py`` when its task function returns a value, else the wrapper above."""
    returns = inspect.signature(inspect.unwrap(smile.train.main)).return_annotation
    if returns not in (None, "None"):
        return ROOT / "train.py"
    script = tmp_path / "train_returning_loss.py"
    script.write_text(_WRAPPER)
    return script


def _multirun(script: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(out), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(script), "-m", *overrides, "debug=fast", "logger=csv"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _steps(sweep_dir: Path) -> list[int]:
    """``global_step`` of each job's last checkpoint, in job-directory order."""
    ckpts = sorted(sweep_dir.glob("*/checkpoints/last.ckpt"))
    return [torch.load(c, map_location="cpu", weights_only=False)["global_step"] for c in ckpts]


def test_submitit_local_runs_each_job(tmp_path):
    _multirun(ROOT / "train.py", tmp_path, "hydra/launcher=submitit_local", "data.masking.ratio=0.5,0.75")
    sweep = tmp_path / "multirun" / "default"
    assert _steps(sweep) == [5, 5]  # both jobs trained their 5 steps
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # ... as submitit jobs


def test_optuna_sweep_runs_trials_and_reports_the_best(tmp_path):
    proc = _multirun(_train_script(tmp_path), tmp_path, "hydra/sweeper=optuna_lr", "hydra.sweeper.n_trials=2")
    sweep = tmp_path / "multirun" / "default"
    assert _steps(sweep) == [5, 5]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert isinstance(result["best_value"], float) and result["best_value"] > 0
    assert set(result["best_params"]) == {"model.optimizer.lr", "data.masking.ratio"}
    assert 1e-5 <= result["best_params"]["model.optimizer.lr"] <= 1e-3
    assert f"Best value: {result['best_value']}" in proc.stdout + proc.stderr


def _hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True).hydra


def test_slurm_launcher_config_sets_project_defaults():
    launcher = _hydra_cfg("hydra/launcher=slurm_gpu", "hydra.launcher.partition=gpu").launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == ("gpu", 1, 1, 1)
    assert launcher.timeout_min == 1440 and launcher.account is None  # the plugin's other keys stay


def test_optuna_sweeper_config_searches_lr_and_mask_ratio():
    sweeper = _hydra_cfg("hydra/sweeper=optuna_lr").sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
    assert dict(sweeper.params) == {
        "model.optimizer.lr": "tag(log, interval(1e-5, 1e-3))",
        "data.masking.ratio": "choice(0.75, 0.8, 0.9)",
    }
