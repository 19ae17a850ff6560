"""Where `train_worker` runs, for either stage: one local process, or Ray Train workers (TorchTrainer).

`launch(cfg, resume)` picks the stage from the config's type (`PretrainConfig` -> stage 1, `SftConfig` ->
stage 2; `trainer.training.stage.STAGES`). Local mode sets MASTER_ADDR/PORT, RANK, WORLD_SIZE and LOCAL_RANK for a
one-rank gloo/nccl group and calls the loop in this process. Ray mode (`ray job submit -- pad pretrain ...`
or `pad sft ...`, or `launch.mode: ray`) starts `launch.num_workers` TorchTrainer workers (one GPU each when
`use_gpu`); Ray sets up the process group and its env vars, DeepSpeed joins it. Ray Train restarts
(`launch.max_failures`) resume from the newest complete checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any, Iterator

from pad_pipeline.core import runtime
from pad_pipeline.core.config import get_dotted, set_dotted
from trainer.training import checkpoint
from trainer.training.engine import read_deepspeed_json
from trainer.training.stage import STAGES, Stage


def stage_name(cfg: Any) -> str:
    """"sft" for an SftConfig, else "pretrain"."""
    from trainer.config.sft import SftConfig

    return "sft" if isinstance(cfg, SftConfig) else "pretrain"


def make_stage(name: str, cfg: Any) -> Stage:
    """The stage `name` around `cfg` (a config object or its JSON dict)."""
    cls: Any = STAGES.get(name)  # a Stage class (the registry types its entries as plain callables)
    return cls.from_config(cfg) if isinstance(cfg, dict) else cls(cfg)


def resolve_mode(cfg: Any) -> str:
    mode = cfg.launch.mode
    if mode == "auto":
        wants_ray = cfg.launch.num_workers > 1 or cfg.launch.address or os.environ.get("RAY_ADDRESS")
        mode = "ray" if wants_ray else "local"
    return mode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def one_local_rank() -> Iterator[None]:
    """The environment of a one-rank process group in this process (MASTER_ADDR/PORT, RANK, WORLD_SIZE,
    LOCAL_RANK), restored afterwards, and the group (if one was joined inside) left on the way out."""
    from trainer.training.engine import shutdown_distributed

    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1",
           "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        shutdown_distributed()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_local(cfg: Any, resume: bool) -> dict[str, Any]:
    """One rank in this process (the demo, tests, a single-GPU box)."""
    from trainer.training.loop import train_worker

    with one_local_rank():
        return train_worker(make_stage(stage_name(cfg), cfg), resume)


def _ray_worker(config: dict[str, Any]) -> None:
    import ray.train

    from trainer.training.loop import train_worker

    summary = train_worker(make_stage(config["stage"], config["cfg"]), config["resume"], config["deepspeed"])
    ray.train.report({"steps": summary["steps"],
                      **{k: v for k, v in summary["last"].items() if isinstance(v, (int, float))}})


def absolute_paths(cfg: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The config as JSON with its local path `fields` made absolute: Ray workers do not run in the driver's
    folder (on a multi-node cluster the paths must name a file system every node shares)."""
    data = cfg.model_dump(mode="json")
    for dotted in fields:
        value = get_dotted(data, dotted)
        if isinstance(value, str) and value and "://" not in value:
            set_dotted(data, dotted, os.path.abspath(value))
    return data


def init_ray(address: str | None) -> None:
    """Join Ray at `runtime.ray_address(address)`: a cluster, else a new local instance (without a dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=runtime.ray_address(address), include_dashboard=False)


def run_ray(cfg: Any, resume: bool) -> dict[str, Any]:
    """`launch.num_workers` ranks under Ray Train; returns rank 0's last reported metrics."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    use_gpu = runtime.use_gpu(cfg.launch.use_gpu)
    init_ray(cfg.launch.address)
    # A restart must pick up the newest checkpoint instead of refusing the non-empty output dir.
    worker_resume: bool | str = True if resume else ("auto" if cfg.launch.max_failures else False)
    name = stage_name(cfg)
    stage = make_stage(name, cfg)
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"stage": name, "cfg": absolute_paths(cfg, stage.path_fields), "resume": worker_resume,
                           "deepspeed": read_deepspeed_json(cfg.train.deepspeed)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.launch.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cfg.launch.cpus_per_worker}),
        run_config=RunConfig(name=f"pad_{name}",
                             storage_path=os.path.abspath(os.path.join(cfg.train.output_dir, "ray")),
                             failure_config=FailureConfig(max_failures=cfg.launch.max_failures)),
    )
    result = trainer.fit()
    summary = dict(result.metrics or {})
    latest = checkpoint.latest_checkpoint(cfg.train.output_dir)
    if "steps" not in summary and latest is not None:  # Ray Train v2 may not hand metrics back
        summary["steps"] = checkpoint.read_state(latest)["step"]
    return summary


def launch(cfg: Any, resume: bool) -> dict[str, Any]:
    return run_ray(cfg, resume) if resolve_mode(cfg) == "ray" else run_local(cfg, resume)
