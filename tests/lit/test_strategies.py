import signal

from hydra.utils import instantiate
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import FSDPStrategy
from smile_testing import compose_cfg

from smile.lit.strategies import fsdp_strategy, slurm_environment
from smile.models.layers import Block


def test_fsdp_and_slurm_trainer_configs_compose(tmp_path):
    fsdp = compose_cfg(["trainer=fsdp"], tmp_path)
    assert fsdp.trainer.precision == "bf16-mixed" and fsdp.trainer.devices == "auto"
    strategy = instantiate(fsdp.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    slurm = compose_cfg(["trainer=slurm", "trainer.num_nodes=4"], tmp_path)
    assert slurm.trainer.strategy == "ddp" and slurm.trainer.num_nodes == 4
    env = instantiate(slurm.trainer.plugins[0])
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal == signal.SIGUSR1


def test_fsdp_wraps_and_checkpoints_transformer_blocks():
    strategy = fsdp_strategy(activation_checkpointing=False)
    assert strategy._activation_checkpointing_kwargs == {}
    assert Block in fsdp_strategy().kwargs["auto_wrap_policy"]._module_classes
    assert slurm_environment(requeue_signal="SIGTERM").requeue_signal == signal.SIGTERM
