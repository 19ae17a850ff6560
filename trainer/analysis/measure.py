"""`pad analyze MANIFEST [--set k=v]`: the paper's measurements of projectors (Sections 3 and 5.2).

For the first `data.num_images` samples of a PAD build, the frozen vision tower's patch features V_before
are computed once per batch and every projector of the manifest maps them to tokens V_after. Per
projector it accumulates H(V_before), H(V_after) (Definition 3.1, streamed), Align(V, W) (mean IoU of
thresholded token-tag cosine maps vs the labels' token masks) and Cos Sim (region embedding vs tag
embedding), using the trainer's own mask -> token rule and tag embeddings (`trainer.data`). It prints the
table (one row per projector, like the paper's Tables 1-3) and writes `OUTPUT/analysis.md`,
`analysis.json`, and for chosen images `renders/PROJECTOR/KEY_tokens.png` (first matching-pursuit word
per token) and `KEY_masks.png` (predicted vs ground-truth masks). A reproduction manifest first builds
its synthetic sets and trains its projectors (`trainer.analysis.prepare`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator, cast

import torch
from torch import nn
from transformers import PreTrainedModel

from pad_pipeline.core import runtime
from pad_pipeline.core.config import config_dict, dump_resolved
from pad_pipeline.dataset.reader import iter_committed_samples
from pad_pipeline.dataset.records import Sample
from trainer.analysis import metrics, render
from trainer.analysis.config import AnalyzeConfig, load_analyze_config
from trainer.analysis.prepare import build_synthetic_sets, train_projectors, warm_up_llm_first
from trainer.analysis.projectors import describe, resolve_projector
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.patches.sample import PatchSample, PatchSampleBuilder
from trainer.data.patches.stream import list_shards
from trainer.models.loading import LoadedVLM, inference_vlm
from trainer.models.projectors import input_tokens
from trainer.models.text_embeddings import tag_token_ids


@dataclass
class ProjectorStats:
    name: str
    source: str
    projector: nn.Module
    grid: int
    after: metrics.SecondMoment
    ious: list[torch.Tensor] = field(default_factory=list)
    cosines: list[torch.Tensor] = field(default_factory=list)
    skipped: int = 0

    def row(self, h_before: float) -> dict[str, Any]:
        ious, cos = torch.cat(self.ious), torch.cat(self.cosines)
        h_after = self.after.entropy()
        return {"projector": self.name, "source": self.source, "token_grid": self.grid,
                "H_before": h_before, "H_after": h_after, "delta_H": h_after - h_before,
                "align": float(ious.mean()) if ious.numel() else math.nan,
                "cos_sim": float(cos.mean()) if cos.numel() else math.nan,
                "labels": int(ious.numel()), "skipped_labels": self.skipped}


def _batches(path: str, num_images: int, batch_size: int) -> Iterator[list[Sample]]:
    samples = itertools.islice(iter_committed_samples(path), num_images)
    while batch := list(itertools.islice(samples, batch_size)):
        yield batch


def _hf(module: nn.Module) -> PreTrainedModel:
    """The vision tower and the LLM are Hugging Face models; PatchAlignedVLM types them as nn.Module."""
    return cast(PreTrainedModel, module)


def _clean_word(token: str) -> str:
    word = token.replace("\u2581", " ").replace("\u0120", " ").strip()
    return word or "\u2423"  # a visible space for whitespace-only pieces


class Analysis:
    """One pass over the images; every projector measured on the same vision features."""

    def __init__(self, cfg: AnalyzeConfig, vlm: LoadedVLM, projectors: list[ProjectorStats],
                 device: torch.device):
        self.cfg, self.vlm, self.projectors, self.device = cfg, vlm, projectors, device
        spec = ProcessorSpec.from_processor(vlm.processor, cfg.data.image_aspect)
        self.collate = PatchCollator(vlm.tokenizer.pad_token_id or 0)
        # one builder per token grid: the trainer's own mask -> token rule and tag tokenisation
        self.builders = {p.grid: PatchSampleBuilder(vlm.tokenizer, spec, p.grid, max_caption_tokens=1,
                                                    min_coverage=cfg.data.min_coverage,
                                                    max_regions=cfg.data.max_regions) for p in projectors}
        self.before = metrics.SecondMoment(_hf(vlm.model.vision).config.hidden_size)
        embeddings = cast(nn.Embedding, _hf(vlm.model.llm).get_input_embeddings())
        self.embedding = embeddings.weight.detach().float()
        self.rule = cfg.metrics.threshold.to_rule()
        self.images = 0
        self.rendered: dict[str, list[str]] = {}

    def _wants_render(self, key: str) -> bool:
        if self.cfg.render.keys:
            return key in self.cfg.render.keys
        return len(self.rendered) < self.cfg.render.images

    @torch.inference_mode()
    def add(self, raw: list[Sample]) -> None:
        built = {g: [b(s) for s in raw] for g, b in self.builders.items()}
        batches = {g: self.collate(items) for g, items in built.items()}
        pixels = next(iter(batches.values()))["pixel_values"].to(self.device)
        features = self.vlm.model.vision_features(pixels).float()
        self.before.update(features)
        render_rows = []
        for i, s in enumerate(raw):
            if self._wants_render(s.key):
                render_rows.append(i)
                self.rendered[s.key] = [p.name for p in self.projectors]
        for p in self.projectors:
            batch = {k: v.to(self.device) for k, v in batches[p.grid].items()}
            masks, valid = batch["region_masks"], batch["region_valid"]
            tokens = p.projector(features).float()
            text = self.vlm.model.text_targets(batch["tag_ids"], batch["tag_mask"]).float()
            p.after.update(tokens)
            p.ious.append(metrics.patch_alignment_ious(tokens, text, masks, valid, self.rule).cpu())
            p.cosines.append(metrics.region_cosines(tokens, text, masks, valid).cpu())
            p.skipped += int(batch["skipped_regions"])
            for i in render_rows:
                n = len(built[p.grid][i].tag_ids)
                self._render(p, raw[i], built[p.grid][i], tokens[i], text[i, :n], masks[i, :n])
        self.images += len(raw)

    def _render(self, p: ProjectorStats, raw: Sample, item: PatchSample, tokens: torch.Tensor,
                text: torch.Tensor, gt: torch.Tensor) -> None:
        """Token map, mask panel and the matching-pursuit words/coefficients of one image."""
        folder = os.path.join(self.cfg.output_dir, "renders", p.name)
        os.makedirs(folder, exist_ok=True)
        image = item.pixels.permute(1, 2, 0).cpu().numpy()
        k = self.cfg.metrics.mp_tokens
        ids, coeffs = metrics.matching_pursuit(tokens, self.embedding.to(tokens.device), k)
        sims = (coeffs[:, 0] / tokens.norm(dim=-1).clamp(min=1e-12)).tolist()
        to_tokens = self.vlm.tokenizer.convert_ids_to_tokens
        words = [[_clean_word(t) for t in to_tokens(row)] for row in ids.tolist()]
        render.token_map(image, [w[0] for w in words], sims, p.grid, self.cfg.render.cell_px).save(
            os.path.join(folder, f"{raw.key}_tokens.png"))
        tags = _kept_tags(raw, item, self.vlm, self.cfg.data.max_regions)
        pred = metrics.predicted_masks(tokens, text, self.rule)
        ious = metrics.mask_iou(pred, gt.bool()).tolist()
        render.mask_panel(image, tags, gt.cpu().numpy(), pred.cpu().numpy(), ious, p.grid).save(
            os.path.join(folder, f"{raw.key}_masks.png"))
        detail = {"key": raw.key, "caption": raw.record.caption, "grid": p.grid,
                  "matching_pursuit": {"words": words, "ids": ids.tolist(),
                                       "coefficients": [[round(c, 5) for c in r] for r in coeffs.tolist()],
                                       "first_cosine": [round(s, 5) for s in sims]},
                  "labels": [{"tag": t, "iou": round(i, 5)} for t, i in zip(tags, ious, strict=True)]}
        with open(os.path.join(folder, f"{raw.key}.json"), "w") as f:
            json.dump(detail, f, indent=1)


def _kept_tags(raw: Sample, item: PatchSample, vlm: LoadedVLM, max_regions: int) -> list[str]:
    """Tags of the labels the sample builder kept, in order. It drops labels that cover no token or
    whose tag has no sub-token; equal sub-token ids mean equal tags, so a greedy match recovers them."""
    n = len(item.tag_ids)
    kept: list[str] = []
    for label in raw.record.labels[:max_regions]:
        if len(kept) < n and tag_token_ids(vlm.tokenizer, label.tag) == item.tag_ids[len(kept)]:
            kept.append(label.tag)
    return kept if len(kept) == n else [f"label {j}" for j in range(n)]


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| Projector | H(V_before) | H(V_after) | ΔH | Align(V, W) | Cos Sim | labels |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['projector']} | {r['H_before']:.3f} | {r['H_after']:.3f} | {r['delta_H']:+.3f} | "
                     f"{r['align']:.3f} | {r['cos_sim']:.3f} | {r['labels']} |")
    return "\n".join(lines)


def _device(cfg: AnalyzeConfig) -> torch.device:
    return runtime.resolve_device(cfg.device, "device")


def analyze(cfg: AnalyzeConfig) -> dict[str, Any]:
    """Measure every projector on the build's first images; returns the JSON report (rows + renders)."""
    list_shards(cfg.data.path)  # a clear error for a missing or empty build
    device = _device(cfg)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    vlm = inference_vlm(cfg.model, dtype=dtype)
    vlm.model.to(device).eval()
    vcfg, llm_dim = _hf(vlm.model.vision).config, _hf(vlm.model.llm).config.hidden_size
    inputs = input_tokens(vlm.vision_grid, cfg.model.vision.drop_cls)
    stats = []
    for name, spec in cfg.projectors.items():
        projector = resolve_projector(name, spec, cfg, vcfg.hidden_size, llm_dim, inputs)
        output_grid = getattr(projector, "output_grid", None)  # a foreign module keeps the grid
        grid = output_grid(vlm.vision_grid) if output_grid else vlm.vision_grid
        stats.append(ProjectorStats(name, describe(name, spec, cfg), projector.to(device), grid,
                                    metrics.SecondMoment(llm_dim)))
    analysis = Analysis(cfg, vlm, stats, device)
    for raw in _batches(cfg.data.path, cfg.data.num_images, cfg.data.batch_size):
        analysis.add(raw)
        print(f"pad analyze: {analysis.images}/{cfg.data.num_images} images", file=sys.stderr, flush=True)
    h_before = analysis.before.entropy()
    rows = [p.row(h_before) for p in stats]
    missing = sorted(set(cfg.render.keys) - set(analysis.rendered))
    if missing:
        print(f"pad analyze: render.keys not among the analysed images: {missing}", file=sys.stderr)
    return {"data": cfg.data.path, "images": analysis.images, "threshold": cfg.metrics.threshold.model_dump(),
            "rows": rows, "rendered": analysis.rendered, "config": config_dict(cfg)}


def write_report(cfg: AnalyzeConfig, report: dict[str, Any]) -> str:
    """analysis.md + analysis.json + config.yaml under output_dir; returns the markdown."""
    os.makedirs(cfg.output_dir, exist_ok=True)
    t = report["threshold"]
    md = (f"{format_table(report['rows'])}\n\n{report['images']} images of `{report['data']}`; labels: those "
          f"covering at least one token of the projector's grid; H in nats (Definition 3.1); Align(V, W) "
          f"threshold rule `{t['rule']}` {t['value']}.\n")
    with open(os.path.join(cfg.output_dir, "analysis.md"), "w") as f:
        f.write(md)
    with open(os.path.join(cfg.output_dir, "analysis.json"), "w") as f:
        json.dump(report, f, indent=1)
    dump_resolved(cfg, os.path.join(cfg.output_dir, "config.yaml"))
    return md


def run(manifest: str, overrides: list[str]) -> int:
    runtime.prepare_cpu_threads()
    cfg = load_analyze_config(manifest, overrides)
    build_synthetic_sets(cfg)
    cfg = warm_up_llm_first(cfg)
    train_projectors(cfg)
    report = analyze(cfg)
    print(write_report(cfg, report))
    print(f"pad analyze: wrote {os.path.join(cfg.output_dir, 'analysis.md')} and analysis.json",
          file=sys.stderr)
    return 0
