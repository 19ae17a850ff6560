"""Forward FLOPs per image of the annotation chain (RAM++ -> Grounding DINO -> SAM) and an H100 estimate.

Builds each real-size architecture from hyper-parameters written out below (nothing is downloaded, no
weights are read) and counts one image's forward pass with `torch.utils.flop_counter.FlopCounterMode`:

  * RAM++        our `RamModel` with `ram_plus_swin_large_config` (Swin-L, 384 x 384, 4585 tags x 51
                 descriptions), batch 1.
  * Grounding DINO  transformers `GroundingDinoForObjectDetection` with the IDEA-Research/grounding-dino-tiny
                 hyper-parameters (Swin-T, BERT-base text encoder, 6+6 layers, 900 queries), on the image
                 resized like the wrapper does (shortest side 800, longest <= 1333; 640x480 -> 1066x800),
                 once per prompt chunk: a full 256-token chunk and a typical ~30-token one.
  * SAM          transformers `SamModel` with the facebook/sam-vit-huge hyper-parameters: the ViT-H image
                 encoder at 1024 x 1024 (always padded to that, whatever the input), then the prompt encoder
                 + mask decoder once with all the image's boxes (`--boxes`, default 10).

By default the models live in a `FakeTensorMode` (CPU-typed tensors with shapes only: no memory, no
arithmetic), so the whole script takes seconds; `--real` runs real fp32 CPU forwards with random weights
instead (slow: SAM's encoder alone is ~6 TFLOPs), which gives the same counts. FLOPs are counted as
FlopCounterMode does: 2 per multiply-accumulate of matmuls / convolutions / attention; element-wise ops
(norms, softmax, activations, resizes) are not counted. Grounding DINO's multi-scale deformable attention
samples its values with `grid_sample`, which FlopCounterMode does not count: it is estimated analytically
(10 FLOPs per sampled point per channel: bilinear 4 x MAC + weighted sum 1 x MAC) and shown separately.

Usage: python bench/flops.py [--height 480 --width 640] [--tokens 256 30] [--boxes 10] [--mfu 0.3 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import (  # noqa: E402
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    SamConfig,
    SamModel,
)
from transformers.models.grounding_dino import modeling_grounding_dino as gdino_module  # noqa: E402

from pad_pipeline.annotate.models import preprocess as pp  # noqa: E402
from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config  # noqa: E402

H100_BF16_DENSE_TFLOPS = 989.0  # H100 SXM, dense (no sparsity) bf16 tensor-core peak
RAM_TAGS = 4585  # ram_tag_list.txt
RAM_IMAGE_SIZE = 384
DINO_SHORTEST, DINO_LONGEST = 800, 1333  # grounding-dino-tiny's preprocessor_config.json
SAM_IMAGE_SIZE = 1024
BERT_CLS, BERT_SEP, BERT_DOT = 101, 102, 1012


# --------------------------------------------------------------------------- configs (real hyper-parameters)

def grounding_dino_tiny_config() -> GroundingDinoConfig:
    """IDEA-Research/grounding-dino-tiny: Swin-T (96, [2,2,6,2], [3,6,12,24], window 7) + bert-base-uncased."""
    backbone = dict(model_type="swin", image_size=224, patch_size=4, num_channels=3, embed_dim=96,
                    depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4.0,
                    qkv_bias=True, hidden_act="gelu", layer_norm_eps=1e-5,
                    out_features=["stage2", "stage3", "stage4"])
    text = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=256, num_queries=900,
        encoder_layers=6, decoder_layers=6, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_n_points=4, decoder_n_points=4,
        num_feature_levels=4, max_text_len=256, two_stage=True, query_dim=4, activation_function="relu",
        position_embedding_type="sine", positional_embedding_temperature=20, embedding_init_target=True,
        decoder_bbox_embed_share=True, two_stage_bbox_embed_share=False, layer_norm_eps=1e-5,
        disable_custom_kernels=True)


def sam_vit_huge_config() -> SamConfig:
    """facebook/sam-vit-huge: ViT-H/16 at 1024 (1280 wide, 32 layers, 16 heads, window 14, global 7/15/23/31)."""
    vision = dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, mlp_dim=5120,
                  image_size=SAM_IMAGE_SIZE, patch_size=16, num_channels=3, output_channels=256,
                  window_size=14, global_attn_indexes=[7, 15, 23, 31], qkv_bias=True, use_abs_pos=True,
                  use_rel_pos=True, num_pos_feats=128, layer_norm_eps=1e-6, hidden_act="gelu")
    prompt = dict(hidden_size=256, image_size=SAM_IMAGE_SIZE, patch_size=16, mask_input_channels=16,
                  num_point_embeddings=4, hidden_act="gelu")
    decoder = dict(hidden_size=256, mlp_dim=2048, num_hidden_layers=2, num_attention_heads=8,
                   attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=3,
                   iou_head_hidden_dim=256, hidden_act="relu")
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


# --------------------------------------------------------------------------- counting

def _cpu_flash_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# FlopCounterMode has no formula for the CPU fused SDPA op; SDPA is forced to the math backend below (which
# decomposes into counted bmm's), this mapping is only a safety net should the fused CPU kernel be picked.
CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa_flop}
# Compute ops that FlopCounterMode does not count; seen ones are listed under the table.
NOTABLE_UNCOUNTED = ("grid_sampler", "upsample", "scaled_dot_product", "einsum", "_flash", "_efficient")


class OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the aten ops a forward runs (to list compute ops FlopCounterMode leaves out)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


@dataclass
class Count:
    name: str
    total: float  # FLOPs counted by FlopCounterMode
    parts: dict[str, float]  # breakdown (sums to total)
    extra: float = 0.0  # analytic estimate of uncounted ops (deformable sampling)
    extra_note: str = ""
    uncounted_ops: list[str] = field(default_factory=list)

    @property
    def flops(self) -> float:
        return self.total + self.extra


def breakdown(counts: dict[str, dict], total: float, groups: list[tuple[str, tuple[str, ...]]]
              ) -> dict[str, float]:
    """Module-name prefixes -> FLOPs; whatever no group claims goes to 'other'."""
    parts: dict[str, float] = {}
    for label, prefixes in groups:
        parts[label] = float(sum(sum(counts[k].values()) for k in counts
                                 if any(k == p for p in prefixes)))
    parts["other (outside the listed modules)"] = total - sum(parts.values())
    return parts


def run_counted(forward: Callable[[], object], mode: contextlib.AbstractContextManager
                ) -> tuple[float, dict[str, dict], list[str]]:
    oplog = OpLog()
    with mode, torch.no_grad(), sdpa_kernel(SDPBackend.MATH), \
            FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as counter, oplog:
        forward()
    counted = {str(k) for k in flop_registry} | {str(k) for k in CUSTOM_FLOPS}
    uncounted = sorted(op for op in oplog.ops
                       if op not in counted and any(s in op for s in NOTABLE_UNCOUNTED))
    return float(counter.get_total_flops()), counter.get_flop_counts(), uncounted


class Env:
    """Where models and inputs live: a FakeTensorMode (default) or real CPU tensors (--real)."""

    def __init__(self, real: bool):
        self.real = real
        if real:
            torch.set_flush_denormal(True)
            self.fake = None
        else:
            from torch._subclasses.fake_tensor import FakeTensorMode
            # Parameter construction peeks at fake storages' data pointers (harmless, shapes only).
            warnings.filterwarnings("ignore", message="Accessing the data pointer of FakeTensor")
            self.fake = FakeTensorMode(allow_non_fake_inputs=True)

    @contextlib.contextmanager
    def mode(self) -> Iterator[None]:
        if self.fake is None:
            yield
            return
        # transformers' Grounding DINO asserts a shape check with a tensor comparison (`bool(t == n)`),
        # which needs real data; under fake tensors the check is skipped (it holds by construction).
        with self.fake, mock.patch.object(gdino_module, "torch_compilable_check", lambda *a, **k: None):
            yield

    def build(self, ctor: Callable[[], nn.Module], real_weights: bool = False) -> nn.Module:
        """`real_weights`: random CPU weights even in fake mode (the forward still runs on fake tensors)."""
        with contextlib.nullcontext() if real_weights else self.mode():
            model = ctor()
        return model.eval().requires_grad_(False)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_ram(env: Env, tags: int) -> tuple[Count, int]:
    model = env.build(lambda: RamModel(ram_plus_swin_large_config(tags, RAM_IMAGE_SIZE)))

    def forward():
        model(torch.randn(1, 3, RAM_IMAGE_SIZE, RAM_IMAGE_SIZE))

    total, counts, uncounted = run_counted(forward, env.mode())
    parts = breakdown(counts, total, [
        ("Swin-L image encoder (384 px)", ("RamModel.image_encoder",)),
        ("image_proj + label_proj", ("RamModel.image_proj", "RamModel.label_proj")),
        (f"tagging head ({tags} tag queries x 2 layers)", ("RamModel.tagging_head",)),
        ("classifier", ("RamModel.classifier",)),
    ])
    parts["RAM++ description re-weighting (einsums)"] = parts.pop("other (outside the listed modules)")
    return Count("RAM++ tagger", total, parts, uncounted_ops=uncounted), n_params(model)


def prompt_ids(tokens: int) -> torch.Tensor:
    """[CLS] tag . tag . ... [SEP], `tokens` long (ids only matter for the per-phrase masks, not FLOPs)."""
    body = []
    while len(body) < tokens - 2:
        body += [2000 + len(body), 3000 + len(body), BERT_DOT]  # a two-word-piece tag and its " ."
    return torch.tensor([[BERT_CLS, *body[:tokens - 2], BERT_SEP]])


def count_grounding_dino(env: Env, model: nn.Module, size: tuple[int, int], tokens: int) -> Count:
    h, w = size
    sampled: dict[str, float] = {"encoder": 0.0, "decoder": 0.0}

    def deformable_hook(where: str):
        def hook(module, args, output):
            value, locations = args[0], args[4]
            batch, queries, heads, levels, points, _ = locations.shape
            head_dim = value.shape[-1]
            sampled[where] += 10.0 * batch * queries * heads * levels * points * head_dim
        return hook

    handles = [module.register_forward_hook(deformable_hook("encoder" if ".encoder." in name else "decoder"))
               for name, module in model.named_modules()
               if isinstance(module, gdino_module.MultiScaleDeformableAttention)]

    def forward():
        ids = prompt_ids(tokens)
        model(pixel_values=torch.randn(1, 3, h, w), pixel_mask=torch.ones(1, h, w, dtype=torch.long),
              input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))

    try:
        total, counts, uncounted = run_counted(forward, env.mode())
    finally:
        for handle in handles:
            handle.remove()
    top = "GroundingDinoForObjectDetection"
    heads = tuple(f"{top}.{kind}.{i}" for kind in ("class_embed", "bbox_embed") for i in range(6))
    parts = breakdown(counts, total, [
        (f"Swin-T backbone ({w}x{h})", (f"{top}.model.backbone",)),
        (f"BERT-base text encoder ({tokens} tokens)", (f"{top}.model.text_backbone", f"{top}.model.text_projection")),
        ("input projections", tuple(f"{top}.model.input_proj_vision.{i}" for i in range(4))),
        ("encoder: 6 x (deformable + text enhancer + fusion)", (f"{top}.model.encoder",)),
        ("two-stage proposals (enc_output + heads)", (f"{top}.model.enc_output",
                                                      f"{top}.model.encoder_output_class_embed",
                                                      f"{top}.model.encoder_output_bbox_embed")),
        ("decoder: 6 layers, 900 queries", (f"{top}.model.decoder",)),
        ("per-layer class/box heads", heads),
    ])
    extra = sampled["encoder"] + sampled["decoder"]
    note = (f"deformable-attention grid_sample (analytic): encoder {sampled['encoder'] / 1e9:.2f} + "
            f"decoder {sampled['decoder'] / 1e9:.2f} GFLOPs")
    return Count(f"Grounding DINO, 1 chunk x {tokens} tokens", total, parts, extra, note, uncounted)


def count_sam(env: Env, model: nn.Module, boxes: int, size: tuple[int, int]) -> tuple[Count, Count]:
    s = SAM_IMAGE_SIZE
    total, counts, uncounted = run_counted(lambda: model.get_image_embeddings(torch.randn(1, 3, s, s)),
                                           env.mode())
    enc_parts = breakdown(counts, total, [
        ("patch embed", ("SamVisionEncoder.patch_embed",)),
        ("28 windowed blocks (14x14, 64->70 padded)",
         tuple(f"SamVisionEncoder.layers.{i}" for i in range(32) if i not in (7, 15, 23, 31))),
        ("4 global-attention blocks (4096 tokens)", tuple(f"SamVisionEncoder.layers.{i}" for i in (7, 15, 23, 31))),
        ("neck", ("SamVisionEncoder.neck",)),
    ])
    encoder = Count("SAM ViT-H image encoder (1024x1024)", total, enc_parts, uncounted_ops=uncounted)

    h, w = pp.longest_edge_size(*size, s)

    def decode():
        box = torch.tensor([0.1 * w, 0.1 * h, 0.6 * w, 0.7 * h])
        model(image_embeddings=torch.randn(1, 256, s // 16, s // 16), input_boxes=box.repeat(1, boxes, 1),
              multimask_output=False)

    total, counts, uncounted = run_counted(decode, env.mode())
    dec_parts = breakdown(counts, total, [
        ("prompt encoder", ("SamModel.prompt_encoder",)),
        ("image-wide positional embedding", ("SamModel.shared_image_embedding",)),
        ("mask decoder", ("SamModel.mask_decoder",)),
    ])
    decoder = Count(f"SAM prompt enc + mask decoder ({boxes} boxes)", total, dec_parts,
                    uncounted_ops=uncounted)
    return encoder, decoder


# --------------------------------------------------------------------------- report

def images_per_s(flops: float, mfu: float, peak_tflops: float) -> float:
    return peak_tflops * 1e12 * mfu / flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--tokens", type=int, nargs="+", default=[256, 30],
                    help="Grounding DINO prompt-chunk lengths to count (one forward each)")
    ap.add_argument("--typical-tokens", type=int, default=None,
                    help="chunk length used for the 'typical' total (default: the smallest of --tokens)")
    ap.add_argument("--boxes", type=int, default=10)
    ap.add_argument("--ram-tags", type=int, default=RAM_TAGS)
    ap.add_argument("--mfu", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    ap.add_argument("--real", action="store_true",
                    help="real fp32 CPU forwards with random weights instead of fake tensors (slow)")
    args = ap.parse_args()
    start = time.perf_counter()
    env = Env(args.real)
    size = (args.height, args.width)
    dino_size = pp.shortest_longest_size(args.height, args.width, DINO_SHORTEST, DINO_LONGEST)

    ram, ram_params = count_ram(env, args.ram_tags)
    # Built with real (random, ~0.7 GB) weights: constructing it under FakeTensorMode deep-copies fake
    # parameters (its shared box heads), which corrupts the heap at interpreter exit in torch 2.14.
    dino_model = env.build(lambda: GroundingDinoForObjectDetection(grounding_dino_tiny_config()),
                           real_weights=True)
    dinos = {t: count_grounding_dino(env, dino_model, dino_size, t) for t in args.tokens}
    dino_params = n_params(dino_model)
    del dino_model
    sam_model = env.build(lambda: SamModel(sam_vit_huge_config()))
    sam_enc, sam_dec = count_sam(env, sam_model, args.boxes, size)
    sam_params = n_params(sam_model)
    sam_enc_params = n_params(sam_model.vision_encoder)
    del sam_model

    typical = args.typical_tokens if args.typical_tokens in dinos else min(args.tokens)
    worst = max(args.tokens)
    print(f"# Forward FLOPs per image, {args.width}x{args.height} input "
          f"({'real fp32 CPU forwards' if args.real else 'FakeTensorMode'}; GFLOPs = 1e9 FLOPs, 1 MAC = 2 FLOPs)")
    print(f"#   RAM++ {RAM_IMAGE_SIZE}x{RAM_IMAGE_SIZE}, {args.ram_tags} tags | Grounding DINO {dino_size[1]}x"
          f"{dino_size[0]} | SAM {SAM_IMAGE_SIZE}x{SAM_IMAGE_SIZE} (resized {pp.longest_edge_size(*size, SAM_IMAGE_SIZE)[1]}x"
          f"{pp.longest_edge_size(*size, SAM_IMAGE_SIZE)[0]} + padding), {args.boxes} boxes\n")

    print("## Parameters")
    for label, count in ((f"RAM++ (Swin-L + head, {args.ram_tags}x51 description embeddings)", ram_params),
                         ("Grounding DINO tiny (Swin-T + BERT-base + 6/6 layers)", dino_params),
                         (f"SAM ViT-H (image encoder {sam_enc_params / 1e6:.1f} M)", sam_params)):
        print(f"  {label:60s} {count / 1e6:9.1f} M")
    print()

    print("## Breakdown (GFLOPs, FlopCounterMode)")
    for c in [ram, *dinos.values(), sam_enc, sam_dec]:
        print(f"  {c.name}: {c.total / 1e9:.2f}")
        for label, f in c.parts.items():
            if abs(f) >= 5e6:
                print(f"      {label:58s} {f / 1e9:9.2f}")
        if c.extra:
            print(f"      + not counted by FlopCounterMode: {c.extra_note}")
        if c.uncounted_ops:
            print(f"      compute ops FlopCounterMode left uncounted: {', '.join(c.uncounted_ops)}"
                  + (" (upsample_*: mask / relative-position resizes, negligible)"
                     if any("upsample" in op for op in c.uncounted_ops) else ""))
    print()

    mfus = args.mfu
    hdr = "".join(f"  img/s@{m:.0%} MFU" for m in mfus)
    print(f"## Per image on one H100 (peak {args.peak_tflops:g} TFLOP/s dense bf16; "
          f"img/s = peak x MFU / FLOPs)")
    print(f"  {'stage':60s} {'GFLOPs/img':>11s} {'share':>6s}{hdr}")

    def row(label: str, flops: float, total: float | None) -> None:
        share = f"{flops / total:6.1%}" if total else " " * 6
        rates = "".join(f"  {images_per_s(flops, m, args.peak_tflops):15.1f}" for m in mfus)
        print(f"  {label:60s} {flops / 1e9:11.1f} {share}{rates}")

    for label, chunk in (("typical", typical), ("full-chunk", worst)):
        dino = dinos[chunk]
        stages = [(ram.name, ram.flops), (dino.name + " (+grid_sample est.)", dino.flops),
                  (sam_enc.name, sam_enc.flops), (sam_dec.name, sam_dec.flops)]
        total = sum(f for _, f in stages)
        print(f"  -- {label}: Grounding DINO with one {chunk}-token chunk")
        for name, f in stages:
            row(name, f, total)
        row("TOTAL (whole chain)", total, None)
        dominant = max(stages, key=lambda s: s[1])
        print(f"  dominant stage: {dominant[0]} ({dominant[1] / total:.0%} of the chain)\n")

    print("  Each further prompt chunk of an image is one more full Grounding DINO forward (the wrapper "
          "re-runs the image backbone per (image, chunk) pair):")
    for t, d in dinos.items():
        print(f"    +{d.flops / 1e9:.1f} GFLOPs per extra {t}-token chunk")
    print(f"  Each further box adds ~{sam_dec.flops / args.boxes / 1e9:.2f} GFLOPs (SAM mask decoder).")
    print(f"\n(done in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
