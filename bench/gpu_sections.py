"""bench/gpu.py's sections, in the order they run, and the sizes of a GPU run and of a `--smoke` run.

The most telling measurements come first (peak, paper chain, peer, fast chain, training); compilation,
the least predictable in time, runs last so a slow compile never costs the rest. A chain's models are built
once and shared by its PAD runs, its FLOP count, its peer loop and its compiled run (compiled last: it
compiles the shared encoders in place).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from flop_count import Env, count_call
from gpu_engine import EngineRun, end_to_end, time_engine_steps
from gpu_models import (
    ChainParts,
    build_parts,
    free,
    pad_annotator,
    peak_memory,
    reset_timings,
    restore_text_backbone,
    workload_images,
)
from gpu_peer import PeerLoop
from gpu_report import Row
from gpu_train import StepResult

from pad_pipeline.annotate.models import compiling
from pad_pipeline.annotate.results import ImageAnnotation


class SectionSkipped(Exception):
    """A section that cannot run because one it depends on did not."""


@dataclass
class Plan:
    smoke: bool
    budget_s: float
    matmul_n: int
    images: int                       # timed images per PAD run
    batches: dict[str, list[int]]     # PAD batch sizes per chain
    peer_images: int
    compile_batch: int
    train_micro_batch: int
    train_steps: int
    warm_batch: bool                  # a full untimed batch before each timed PAD run
    count_images: int                 # images whose FLOPs are counted (the first of the timed ones)
    sft_text_tokens: int              # text tokens of a stage-2 sample (plus 576 image tokens)
    e2e_steps: int                    # steps of each stage in the end-to-end section
    caps: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_gpu(cls) -> "Plan":
        return cls(smoke=False, budget_s=460.0, matmul_n=8192, images=64,
                   batches={"paper": [8, 16, 32], "fast": [16, 32], "fast-L": [32]}, peer_images=16,
                   compile_batch=16, train_micro_batch=16, train_steps=3, warm_batch=True, count_images=16,
                   sft_text_tokens=512, e2e_steps=6,
                   caps={"peak": 20, "build": 60, "pad": 60, "flops": 45, "peer": 45, "train": 100, "engine": 120,
                         "e2e": 120, "compile": 150})

    @classmethod
    def for_smoke(cls) -> "Plan":
        # fast-L is the fast chain with a larger SAM 2 (the same code); at tiny sizes it would repeat it.
        return cls(smoke=True, budget_s=240.0, matmul_n=256, images=2, batches={"paper": [1, 2], "fast": [1]},
                   peer_images=1, compile_batch=1, train_micro_batch=2, train_steps=1, warm_batch=False,
                   count_images=1, sft_text_tokens=32, e2e_steps=2,
                   caps={k: 60 for k in ("peak", "build", "pad", "flops", "peer", "train", "engine", "e2e",
                                         "compile")})


class Run:
    """The state sections share (models, eager results, FLOPs, rows) and the sections themselves."""

    def __init__(self, plan: Plan, device: torch.device, budget: object):
        self.plan, self.device = plan, device
        self.rows: list[Row] = []
        self.failed: list[str] = []
        self.parts: dict[str, ChainParts] = {}
        self.pad_rows: dict[str, list[Row]] = {}
        self.eager: dict[tuple[str, int], list[ImageAnnotation]] = {}
        self.peak_tflops: float | None = None
        self.flops_per_image: dict[str, float] = {}
        self.train_flops: dict[int, float] = {}  # model FLOPs of one training step, per stage
        self.images = workload_images(plan.images, plan.smoke)
        self.warm = workload_images(max(max(b) for b in plan.batches.values()), plan.smoke, seed=1)
        if plan.smoke:
            compiling.BACKEND = "eager"  # Dynamo's tracing; inductor's CPU code generation takes minutes

    def sections(self) -> Iterator[tuple[str, float, Callable[[], None]]]:
        c = self.plan.caps
        yield "peak", c["peak"], self.peak
        for chain in ("paper", "fast"):
            yield f"{chain}: build", c["build"], lambda chain=chain: self.build(chain)
            yield f"{chain}: PAD", c["pad"], lambda chain=chain: self.pad(chain)
            yield f"{chain}: costs", c.get("costs", c["pad"]), lambda chain=chain: self.costs(chain)
            yield f"{chain}: FLOPs", c["flops"], lambda chain=chain: self.count(chain)
            yield f"{chain}: peer", c["peer"], lambda chain=chain: self.peer(chain)
        yield "train: stage 1", c["train"], lambda: self.train(1)
        yield "train: stage 2", c["train"], lambda: self.train(2)
        yield "train: engine stage 1", c["engine"], lambda: self.engine(EngineRun(1))
        yield "train: engine stage 2", c["engine"], lambda: self.engine(EngineRun(2))
        yield "train: engine fused Adam", c["engine"], lambda: self.engine(EngineRun(1, torch_adam=False))
        yield "train: end to end", c["e2e"], self.end_to_end
        for chain in ("paper", "fast"):
            yield f"{chain}: compile", c["compile"], lambda chain=chain: self.compiled(chain)
        if "fast-L" in self.plan.batches:
            yield "fast-L: build", c["build"], lambda: self.build("fast-L")
            yield "fast-L: PAD", c["pad"], lambda: self.pad("fast-L")
            yield "fast-L: FLOPs", c["flops"], lambda: self.count("fast-L")

    def recover(self) -> None:
        free()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _parts(self, chain: str) -> ChainParts:
        if chain not in self.parts:
            raise SectionSkipped(f"{chain}: its models were not built")
        return self.parts[chain]

    def peak(self) -> None:
        n = self.plan.matmul_n
        a, b = (torch.randn(n, n, device=self.device, dtype=torch.bfloat16) for _ in range(2))
        for _ in range(3):
            a @ b
        self._sync()
        t0, reps = time.perf_counter(), 10
        for _ in range(reps):
            a @ b
        self._sync()
        self.peak_tflops = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12
        self.rows.append(Row("peak", f"bf16 matmul {n}^3", rate=self.peak_tflops, unit="TFLOP/s",
                             tflops=self.peak_tflops, pct_peak=100.0, note="mean of 10 after 3 warm-ups"))

    def build(self, chain: str) -> None:
        t0 = time.perf_counter()
        parts = build_parts(chain, self.device, self.plan.smoke)
        self._sync()
        self.parts[chain] = parts
        params = {k: sum(p.numel() for p in m.parameters()) / 1e6
                  for k, m in (("ram", parts.ram), ("detector", parts.detector), ("segmenter", parts.segmenter))}
        attn = f"{parts.segmenter.config._attn_implementation}"
        text = parts.detector.config.text_config._attn_implementation
        note = (f"M params: RAM++ {params['ram']:.0f}, {type(parts.detector).__name__} {params['detector']:.0f}, "
                f"{type(parts.segmenter).__name__} {params['segmenter']:.0f}; attention: segmenter {attn}, "
                f"detector text {text}, RAM sdpa; built in {time.perf_counter() - t0:.1f} s")
        self.rows.append(Row(chain, "models (random weights, real configs)" if not self.plan.smoke else
                             "models (tiny-random)", note=note))

    def _annotate_all(self, annotator, batch: int) -> tuple[list[ImageAnnotation], float]:
        results: list[ImageAnnotation] = []
        t0 = time.perf_counter()
        for i in range(0, len(self.images), batch):
            results += annotator.annotate(self.images[i:i + batch])
        self._sync()
        return results, time.perf_counter() - t0

    def _timed(self, chain: str, batch: int, compiled: bool) -> tuple[Row, list[ImageAnnotation], float]:
        parts = self._parts(chain)
        annotator = pad_annotator(parts, batch, self.device, compiled=compiled)
        try:
            t0 = time.perf_counter()
            annotator.warm_up()
            if self.plan.warm_batch:
                annotator.annotate(self.warm[:batch])
            warm_s = time.perf_counter() - t0
            reset_timings(annotator)
            with peak_memory(self.device) as mem:
                results, seconds = self._annotate_all(annotator, batch)
        finally:
            restore_text_backbone(parts)
        n = annotator.timings.images
        stage_ms = {k: 1000 * v / n for k, v in annotator.timings.seconds.items()}
        boxes = sum(len(r.labels) + r.empty_masks for r in results) / len(results)
        failures = sum(r.failure is not None for r in results)
        note = f"{boxes:.1f} boxes/img" + (f"; {failures} FAILED images" if failures else "")
        row = Row(chain, "PAD" + (" compiled" if compiled else ""), batch, len(results) / seconds, "img/s",
                  stage_ms, mem["gib"], note=note)
        return row, results, warm_s

    def pad(self, chain: str) -> None:
        self.pad_rows[chain] = []
        for batch in self.plan.batches[chain]:
            row, results, _ = self._timed(chain, batch, compiled=False)
            self.eager[(chain, batch)] = results
            self.pad_rows[chain].append(row)
            self.rows.append(row)

    def costs(self, chain: str) -> None:
        """Issue 20's rows (bench/gpu_annotate.py): records across batch sizes, syncs and launches per stage,
        GPU busy fraction, GPU-hours of a 558K build."""
        from gpu_annotate import build_hours, gpu_busy, records_equal, stage_costs

        parts, batch = self._parts(chain), max(self.plan.batches[chain])
        self.rows += [records_equal(self.eager, chain), stage_costs(parts, self.images, batch, self.device),
                      gpu_busy(parts, self.images, batch, self.device),
                      build_hours(self.pad_rows.get(chain, []), chain, self.device)]

    def count(self, chain: str) -> None:
        """FLOPs of the timed work, per stage (calls of 4 images, so math-backend attention stays small)."""
        parts = self._parts(chain)
        if not self.pad_rows.get(chain):
            raise SectionSkipped(f"{chain}: no PAD run to read FLOPs against")
        annotator = pad_annotator(parts, 4, self.device)
        env, flops = Env(real=True, device=self.device), {}
        images = self.images[:self.plan.count_images]
        try:
            for i in range(0, len(images), 4):
                batch: dict = {"image": images[i:i + 4]}
                for stage in annotator.stages:
                    def call(stage=stage, inputs=batch, out=batch):
                        out.update(stage(dict(inputs)))
                    with torch.inference_mode():
                        flops[stage.name] = flops.get(stage.name, 0.0) + count_call(call, [parts.detector], env)
        finally:
            restore_text_backbone(parts)
        per_image = {k: v / len(images) for k, v in flops.items()}
        self.flops_per_image[chain] = sum(per_image.values())
        for row in self.pad_rows[chain]:
            self._fill_tflops(row, self.flops_per_image[chain])
            row.note += "; TFLOP/s per stage: " + ", ".join(
                f"{k} {per_image[k] / (row.stage_ms[k] / 1000) / 1e12:.3g}" for k in ("tag", "detect", "segment")
                if row.stage_ms.get(k))
        self.rows.append(Row(chain, "FLOPs counted (flop_count.py)", note=", ".join(
            f"{k} {v / 1e9:.4g}" for k, v in per_image.items() if v) + f" GFLOPs/img; total "
            f"{self.flops_per_image[chain] / 1e12:.3g} TFLOPs/img (over {len(images)} of the timed images)"))

    def _fill_tflops(self, row: Row, flops_per_image: float) -> None:
        row.tflops = flops_per_image * (row.rate or 0) / 1e12
        row.pct_peak = 100 * row.tflops / self.peak_tflops if self.peak_tflops else None

    def peer(self, chain: str) -> None:
        parts = self._parts(chain)
        loop = PeerLoop(parts, self.device)
        loop(self.warm[0])
        images = self.images[:self.plan.peer_images]
        with peak_memory(self.device) as mem:
            t0 = time.perf_counter()
            labels = [loop(im) for im in images]
            self._sync()
            rate = len(images) / (time.perf_counter() - t0)
        row = Row(chain, "peer (Grounded-SAM loop, fp32)", 1, rate, "img/s", peak_gib=mem["gib"],
                  note=f"{sum(map(len, labels)) / len(labels):.1f} boxes/img")
        if chain in self.flops_per_image:
            self._fill_tflops(row, self.flops_per_image[chain])
            row.note += "; TFLOP/s of PAD's FLOP count"
        best = max((r.rate or 0 for r in self.pad_rows.get(chain, [])), default=0)
        if best:
            row.note += f"; PAD / peer = {best / rate:.1f}x (PAD's best batch)"
        self.rows.append(row)

    def compiled(self, chain: str) -> None:
        batch = self.plan.compile_batch
        if (chain, batch) not in self.eager:
            raise SectionSkipped(f"{chain}: no uncompiled run at batch {batch} to compare with")
        row, results, warm_s = self._timed(chain, batch, compiled=True)
        same = sum(a.tags == b.tags and a.labels == b.labels for a, b in zip(results, self.eager[(chain, batch)],
                                                                           strict=True))
        row.note += f"; compile + warm-up {warm_s:.0f} s; records equal to uncompiled: {same}/{len(results)}"
        if chain in self.flops_per_image:
            self._fill_tflops(row, self.flops_per_image[chain])
        self.rows.append(row)

    def train(self, stage: int) -> None:
        from gpu_train import assemble, build_towers, stage1_batch, stage2_available, stage2_batch, time_steps

        if stage == 2 and not stage2_available():
            self.rows.append(Row("train", "stage 2: not available in this checkout"))
            return
        vision, llm = build_towers(self.device, self.plan.smoke)
        vlm = assemble(vision, llm, train_llm=stage == 2)
        make = stage1_batch if stage == 1 else functools.partial(stage2_batch, text=self.plan.sft_text_tokens)
        try:
            res = time_steps(vlm, make, stage, self.plan.train_micro_batch, self.plan.train_steps, self.device)
        finally:
            del vlm, vision, llm
            free()
        self.train_flops[stage] = res.flops_per_step
        what = "projector; caption + patch loss" if stage == 1 else "projector + LLM; LM loss"
        self.rows.append(self._train_row(f"stage {stage} step ({what})", res, "plain torch AdamW"))

    def _train_row(self, run: str, res: StepResult, how: str) -> Row:
        tflops = res.flops_per_step / res.step_s / 1e12 if res.flops_per_step else None
        return Row("train", run, res.micro_batch, res.samples_per_s, "samples/s", peak_gib=res.peak_gib,
                   tflops=tflops, pct_peak=100 * tflops / self.peak_tflops if tflops and self.peak_tflops else None,
                   note=f"{res.tokens_per_s:.0f} tokens/s ({res.tokens_per_sample} per sample); "
                        f"{res.step_s * 1000:.0f} ms/step; {how}, bf16 on CUDA, checkpointing on")

    def engine(self, run: EngineRun) -> None:
        """PAD's `TrainingEngine` (DeepSpeed ZeRO-2 for stage 1, ZeRO-3 for stage 2) on the same work."""
        from gpu_train import assemble, build_towers, stage1_batch, stage2_batch

        zero = {1: "ZeRO-2", 2: "ZeRO-3"}[run.stage]
        adam = "DeepSpeed torch_adam" if run.torch_adam else "DeepSpeed fused Adam (JIT)"
        title = f"stage {run.stage} engine step ({zero}, {adam})"
        if not run.torch_adam and self.device.type != "cuda":
            self.rows.append(Row("train", f"{title}: CUDA only, not run here"))
            return
        vision, llm = build_towers(self.device, self.plan.smoke)
        vlm = assemble(vision, llm, train_llm=run.stage == 2)
        make = stage1_batch if run.stage == 1 else functools.partial(stage2_batch, text=self.plan.sft_text_tokens)
        try:
            res = time_engine_steps(vlm, make, run, self.plan.train_micro_batch, self.plan.train_steps,
                                    self.device, self.train_flops.get(run.stage, 0.0))
        finally:
            del vlm, vision, llm
            free()
        self.rows.append(self._train_row(title, res, "PAD's TrainingEngine"))

    def end_to_end(self) -> None:
        """`pad pretrain` -> `pad sft` on the demo manifests -> the HF export generating on the device."""
        got = end_to_end(self.device, steps=self.plan.e2e_steps)
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in got["seconds"].items())
        self.rows.append(Row("train", "pad pretrain -> pad sft -> export-hf generate (demo, tiny)",
                             note=f"{parts}; export logits on {got['device']}"))
