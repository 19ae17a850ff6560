"""DeepSpeed, and only here: process group, engine initialisation, micro-steps, save and load.

`read_deepspeed_json(path)` reads a JSON under `cluster/deepspeed/`; `resolve_deepspeed_config` fills its "auto"
values from the manifest (batch sizes, accumulation, lr, clipping, bf16), like HF Trainer does.
`TrainingEngine` wraps `deepspeed.initialize` with the trainable parameters only (stage 1: the projector;
stage 2: projector + LLM) and a client `LambdaLR` (our cosine schedule), so DeepSpeed owns the optimizer,
accumulation, clipping and checkpoint files (ZeRO-3: each rank's partition of parameters and optimizer
state); checkpoints exclude frozen parameters. `full_state_dict` gathers ZeRO-3 partitions one parameter at
a time, so only one full tensor is in flight, and copies them on the ranks that keep the result.
`consolidated_state_dict(step_dir)` merges a checkpoint's ZeRO partitions (for `pad export`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import deepspeed
import torch
from torch import nn

from pad_pipeline.core.errors import ConfigError


def init_distributed(backend: str) -> None:
    """Join (or create from MASTER_ADDR/PORT, RANK, WORLD_SIZE) the process group DeepSpeed uses.

    On CPU (gloo) DeepSpeed's shared-memory all-reduce op is switched off: it serves inference only, and its
    JIT build takes a file lock every DeepSpeed process on the machine shares (minutes of waiting under load)."""
    if backend == "gloo":
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend=backend, verbose=False)


def shutdown_distributed() -> None:
    """Leave the process group through DeepSpeed, which also drops the groups it cached (a later run in this
    process, e.g. a second ZeRO-3 engine, would otherwise use a destroyed group)."""
    import torch.distributed as dist

    if dist.is_initialized():
        deepspeed.comm.destroy_process_group()


def _fill(node: Any, values: dict[str, Any], path: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, values, f"{path}.{k}" if path else k) for k, v in node.items()}
    if node == "auto":
        if path not in values:
            raise ConfigError(f"deepspeed config: no value to fill 'auto' at {path}")
        return values[path]
    return node


def read_deepspeed_json(path: str) -> dict[str, Any]:
    """The DeepSpeed JSON at `path` (read by the driver: Ray workers may run in another folder)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"field 'train.deepspeed': cannot read {path} ({e})") from None


def resolve_deepspeed_config(raw: dict[str, Any], *, micro_batch: int, grad_accum: int, world: int, lr: float,
                             weight_decay: float, grad_clip: float, bf16: bool) -> dict[str, Any]:
    """`raw` with its "auto" values filled from the manifest."""
    values = {
        "train_batch_size": micro_batch * grad_accum * world,
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accum,
        "gradient_clipping": grad_clip,
        "bf16.enabled": bf16,
        "optimizer.params.lr": lr,
        "optimizer.params.weight_decay": weight_decay,
    }
    return _fill(raw, values)


class TrainingEngine:
    """DeepSpeed engine around a module whose only trainable parameters are those in `trainable`."""

    def __init__(self, model: nn.Module, ds_config: dict[str, Any], lr_lambda: Callable[[int], float]):
        self.zero_stage = int(ds_config.get("zero_optimization", {}).get("stage", 0))
        params = [p for p in model.parameters() if p.requires_grad]
        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=model, model_parameters=params, config=ds_config,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda))

    @property
    def module(self) -> nn.Module:
        return self.engine.module

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def forward(self, *args, **kwargs) -> Any:
        return self.engine(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        """Call after every micro-batch; DeepSpeed steps the optimizer and scheduler at the boundary."""
        self.engine.step()

    @property
    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def grad_norm(self) -> float | None:
        norm = self.engine.get_global_grad_norm()
        return None if norm is None else float(norm)

    def save(self, directory: str) -> None:
        """All ranks: optimizer/scheduler/projector state into `directory` (DeepSpeed's layout)."""
        self.engine.save_checkpoint(directory, tag="deepspeed", save_latest=False, exclude_frozen_parameters=True)

    def load(self, directory: str) -> None:
        path, _ = self.engine.load_checkpoint(directory, tag="deepspeed", load_module_strict=False)
        if path is None:
            raise ConfigError(f"{directory}: DeepSpeed could not load this checkpoint")

    def full_state_dict(self, module: nn.Module, keep: bool = True) -> dict[str, torch.Tensor]:
        """CPU copy of `module`'s state dict, gathered first under ZeRO-3 (call on all ranks; ranks with
        `keep=False` take part in the gathers and get {})."""
        if self.zero_stage != 3:
            return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()} if keep else {}
        out = {}
        for name, value in module.state_dict(keep_vars=True).items():
            if hasattr(value, "ds_id"):  # a ZeRO-3 partitioned parameter
                with deepspeed.zero.GatheredParameters([value], modifier_rank=None):
                    if keep:
                        out[name] = value.detach().cpu().clone()
            elif keep:
                out[name] = value.detach().cpu().clone()
        return out


def consolidated_state_dict(checkpoint_dir: str) -> dict[str, torch.Tensor]:
    """The fp32 trainable weights of a checkpoint folder (`step-N/`), merged from its ZeRO-2/3 partitions by
    DeepSpeed's own `zero_to_fp32` utility, on CPU (module key names: `projector.*`, `llm.*`)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    try:
        return get_fp32_state_dict_from_zero_checkpoint(checkpoint_dir, tag="deepspeed",
                                                        exclude_frozen_parameters=True)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{checkpoint_dir}: DeepSpeed cannot consolidate this checkpoint "
                          f"({type(e).__name__}: {e})") from None


def device_for_rank(use_gpu: bool) -> torch.device:
    if use_gpu:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")
