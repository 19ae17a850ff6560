"""`pad eval` on several GPUs: one Ray actor per GPU, each holding the model, each answering a share.

The queries are cut into `generation.gpus` contiguous shares of near-equal size; actor k answers share k
with the same `LocalAnswerer` a single process uses (so one GPU's answers are the answers), and the shares
are joined in order. Ray is joined at `RAY_ADDRESS` when set (a `ray job submit`), else started locally
with the machine's GPUs. On a machine where Ray was told of GPUs that CUDA does not have (the tests), the
actors fall back to the CPU exactly as `generation.device: auto` does.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from pad_pipeline.core import runtime
from pad_pipeline.core.errors import PadError
from trainer.eval.answerer import LocalAnswerer, SubjectRef
from trainer.eval.config import GenerationConfig
from trainer.eval.generate import Query


def shares(count: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of `parts` contiguous near-equal shares of `count` items (the first ones one longer)."""
    size, extra = divmod(count, parts)
    bounds, start = [], 0
    for k in range(parts):
        end = start + size + (1 if k < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


class _Worker:
    """The body of one actor: a LocalAnswerer on the actor's GPU."""

    def __init__(self, ref: SubjectRef, settings: GenerationConfig):
        from pad_pipeline.core import runtime

        runtime.prepare_cpu_threads()
        self.local = LocalAnswerer(ref, settings.model_copy(update={"gpus": 1}))

    def answers(self, queries: Sequence[Query], max_new_tokens: int) -> list[str]:
        return self.local.answers(queries, max_new_tokens)


class RayAnswerer:
    def __init__(self, ref: SubjectRef, settings: GenerationConfig):
        import ray

        if not ray.is_initialized():
            ray.init(address=runtime.ray_address(), include_dashboard=False,
                     log_to_driver=False)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if gpus < settings.gpus:
            raise PadError(f"field 'generation.gpus': {settings.gpus} asked for, the Ray cluster has {gpus}")
        actor = ray.remote(num_gpus=1, num_cpus=settings.cpus_per_gpu)(_Worker)
        self.actors: list[Any] = [actor.remote(ref, settings) for _ in range(settings.gpus)]

    def answers(self, queries: Sequence[Query], max_new_tokens: int,
                progress: Callable[[int], None] | None = None) -> list[str]:
        import ray

        parts = shares(len(queries), len(self.actors))
        pending = {a.answers.remote(list(queries[lo:hi]), max_new_tokens): k
                   for k, (a, (lo, hi)) in enumerate(zip(self.actors, parts, strict=True)) if hi > lo}
        results: dict[int, list[str]] = {}
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready)
            results[k] = ray.get(ready)
            if progress is not None:
                progress(sum(map(len, results.values())))
        return [answer for k in sorted(results) for answer in results[k]]

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
