"""Forward FLOPs per image of the annotation chains (paper: RAM++ -> Grounding DINO -> SAM; fast: RAM++ ->
MM Grounding DINO -> SAM 2.1) and an H100 estimate.

Builds each real-size architecture from the hyper-parameters in bench/real_configs.py (nothing is
downloaded, no weights are read) and counts one image's forward pass with bench/flop_count.py:

  * RAM++        our `RamModel` with `ram_plus_swin_large_config` (Swin-L, 384 x 384, 4585 tags x 51
                 descriptions), batch 1.
  * Grounding DINO / MM Grounding DINO (tiny)  transformers' models with the grounding-dino-tiny shapes
                 (Swin-T, BERT-base text encoder, 6+6 layers, 900 queries), on the image resized like the
                 wrapper does (shortest side 800, longest <= 1333; 640x480 -> 1066x800), once per prompt
                 chunk: a full 256-token chunk and a typical ~30-token one. Both have the same architecture.
  * SAM          transformers `SamModel` with the facebook/sam-vit-huge hyper-parameters: the ViT-H image
                 encoder at 1024 x 1024 (always padded to that, whatever the input), then the prompt encoder
                 + mask decoder once with all the image's boxes (`--boxes`, default 10).
  * SAM 2.1      transformers `Sam2Model`, Hiera-L and Hiera-S at 1024 x 1024 (the whole image resized to
                 the square input), then the prompt encoder + mask decoder with all the boxes.

By default the models live in a `FakeTensorMode` (shapes only), so the whole script takes seconds; `--real`
runs real fp32 CPU forwards with random weights instead (slow: SAM's encoder alone is ~6 TFLOPs), which
gives the same counts. How FLOPs are counted (and what is estimated): bench/flop_count.py.

Usage: python bench/flops.py [--height 480 --width 640] [--tokens 256 30] [--boxes 10] [--mfu 0.3 0.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flop_count import Count, Env, breakdown, deformable_sampling, n_params, run_counted  # noqa: E402
from real_configs import (  # noqa: E402
    DINO_LONGEST,
    DINO_SHORTEST,
    RAM_IMAGE_SIZE,
    RAM_TAGS,
    SAM_IMAGE_SIZE,
    grounding_dino_tiny_config,
    mm_grounding_dino_tiny_config,
    sam2_hiera_config,
    sam_vit_huge_config,
)
from transformers import (  # noqa: E402
    GroundingDinoForObjectDetection,
    MMGroundingDinoForObjectDetection,
    Sam2Model,
    SamModel,
)

from pad_pipeline.annotate.models import preprocess as pp  # noqa: E402
from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config  # noqa: E402

H100_BF16_DENSE_TFLOPS = 989.0  # H100 SXM, dense (no sparsity) bf16 tensor-core peak
BERT_CLS, BERT_SEP, BERT_DOT = 101, 102, 1012


def count_ram(env: Env, model: nn.Module, image_size: int = RAM_IMAGE_SIZE) -> Count:
    total, counts, uncounted = run_counted(lambda: model(torch.randn(1, 3, image_size, image_size)), env.mode())
    tags = model.cfg.num_classes
    parts = breakdown(counts, total, [
        (f"Swin image encoder ({image_size} px)", ("RamModel.image_encoder",)),
        ("image_proj + label_proj", ("RamModel.image_proj", "RamModel.label_proj")),
        (f"tagging head ({tags} tag queries)", ("RamModel.tagging_head",)),
        ("classifier", ("RamModel.classifier",)),
    ])
    parts["RAM++ description re-weighting (einsums)"] = parts.pop("other (outside the listed modules)")
    return Count("RAM++ tagger", total, parts, uncounted_ops=uncounted)


def prompt_ids(tokens: int) -> torch.Tensor:
    """[CLS] tag . tag . ... [SEP], `tokens` long (ids only matter for the per-phrase masks, not FLOPs)."""
    body: list[int] = []
    while len(body) < tokens - 2:
        body += [200 + len(body) % 700, 300 + len(body) % 700, BERT_DOT]  # a two-word-piece tag and its " ."
    return torch.tensor([[BERT_CLS, *body[:tokens - 2], BERT_SEP]])


def count_grounding_dino(env: Env, model: nn.Module, size: tuple[int, int], tokens: int) -> Count:
    """One (image, chunk) forward of Grounding DINO or MM Grounding DINO (same architecture)."""
    h, w = size

    def forward():
        ids = prompt_ids(tokens)
        model(pixel_values=torch.randn(1, 3, h, w), pixel_mask=torch.ones(1, h, w, dtype=torch.long),
              input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))

    with deformable_sampling([model]) as sampled:
        total, counts, uncounted = run_counted(forward, env.mode())
    top, layers = type(model).__name__, model.config.decoder_layers
    heads = tuple(f"{top}.{kind}.{i}" for kind in ("class_embed", "bbox_embed") for i in range(layers))
    parts = breakdown(counts, total, [
        (f"Swin backbone ({w}x{h})", (f"{top}.model.backbone",)),
        (f"BERT text encoder ({tokens} tokens)", (f"{top}.model.text_backbone", f"{top}.model.text_projection")),
        ("input projections", tuple(f"{top}.model.input_proj_vision.{i}" for i in range(4))),
        ("encoder (deformable + text enhancer + fusion)", (f"{top}.model.encoder",)),
        ("two-stage proposals (enc_output + heads)", (f"{top}.model.enc_output",
                                                      f"{top}.model.encoder_output_class_embed",
                                                      f"{top}.model.encoder_output_bbox_embed")),
        (f"decoder ({model.config.num_queries} queries)", (f"{top}.model.decoder",)),
        ("per-layer class/box heads", heads),
    ])
    extra = sampled["encoder"] + sampled["decoder"]
    note = (f"deformable-attention grid_sample (analytic): encoder {sampled['encoder'] / 1e9:.2f} + "
            f"decoder {sampled['decoder'] / 1e9:.2f} GFLOPs")
    name = "MM Grounding DINO" if top.startswith("MM") else "Grounding DINO"
    return Count(f"{name}, 1 chunk x {tokens} tokens", total, parts, extra, note, uncounted)


def count_sam(env: Env, model: nn.Module, boxes: int, size: tuple[int, int]) -> tuple[Count, Count]:
    """SAM's image encoder (padded square input) and its prompt encoder + mask decoder with `boxes` boxes."""
    s, v = model.config.vision_config.image_size, model.config.vision_config
    total, counts, uncounted = run_counted(lambda: model.get_image_embeddings(torch.randn(1, 3, s, s)), env.mode())
    glob = tuple(v.global_attn_indexes)
    enc_parts = breakdown(counts, total, [
        ("patch embed", ("SamVisionEncoder.patch_embed",)),
        (f"{v.num_hidden_layers - len(glob)} windowed blocks ({v.window_size}x{v.window_size})",
         tuple(f"SamVisionEncoder.layers.{i}" for i in range(v.num_hidden_layers) if i not in glob)),
        (f"{len(glob)} global-attention blocks", tuple(f"SamVisionEncoder.layers.{i}" for i in glob)),
        ("neck", ("SamVisionEncoder.neck",)),
    ])
    encoder = Count(f"SAM ViT image encoder ({s}x{s})", total, enc_parts, uncounted_ops=uncounted)
    h, w = pp.longest_edge_size(*size, s)
    grid = model.config.prompt_encoder_config.image_embedding_size

    def decode():
        box = torch.tensor([0.1 * w, 0.1 * h, 0.6 * w, 0.7 * h])
        model(image_embeddings=torch.randn(1, model.config.vision_config.output_channels, grid, grid),
              input_boxes=box.repeat(1, boxes, 1), multimask_output=False)

    total, counts, uncounted = run_counted(decode, env.mode())
    dec_parts = breakdown(counts, total, [
        ("prompt encoder", ("SamModel.prompt_encoder",)),
        ("image-wide positional embedding", ("SamModel.shared_image_embedding",)),
        ("mask decoder", ("SamModel.mask_decoder",)),
    ])
    return encoder, Count(f"SAM prompt enc + mask decoder ({boxes} boxes)", total, dec_parts, uncounted_ops=uncounted)


def count_sam2(env: Env, model: nn.Module, boxes: int, label: str) -> tuple[Count, Count]:
    """SAM 2's Hiera image encoder + FPN neck (square input) and its prompt encoder + mask decoder."""
    s = int(model.config.vision_config.backbone_config.image_size[0])
    levels: list[torch.Tensor] = []
    total, counts, uncounted = run_counted(
        lambda: levels.extend(model.get_image_embeddings(torch.randn(1, 3, s, s))), env.mode())
    enc_parts = breakdown(counts, total, [
        ("Hiera trunk", ("Sam2VisionModel.backbone",)),
        ("FPN neck", ("Sam2VisionModel.neck",)),
    ])
    encoder = Count(f"SAM 2.1 {label} image encoder ({s}x{s})", total, enc_parts, uncounted_ops=uncounted)

    def decode():
        box = torch.tensor([0.1 * s, 0.1 * s, 0.6 * s, 0.7 * s])
        model(image_embeddings=levels, input_boxes=box.repeat(1, boxes, 1), multimask_output=False)

    total, counts, uncounted = run_counted(decode, env.mode())
    dec_parts = breakdown(counts, total, [("prompt encoder", ("Sam2Model.prompt_encoder",)),
                                          ("mask decoder", ("Sam2Model.mask_decoder",))])
    decoder = Count(f"SAM 2.1 prompt enc + mask decoder ({boxes} boxes)", total, dec_parts, uncounted_ops=uncounted)
    return encoder, decoder


# --------------------------------------------------------------------------- report

def images_per_s(flops: float, mfu: float, peak_tflops: float) -> float:
    return peak_tflops * 1e12 * mfu / flops


def print_breakdown(counts: list[Count]) -> None:
    print("## Breakdown (GFLOPs, FlopCounterMode)")
    for c in counts:
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


def print_chain(title: str, stages: list[tuple[str, float]], mfus: list[float], peak: float) -> None:
    total = sum(f for _, f in stages)
    print(f"  -- {title}")
    for name, f in [*stages, ("TOTAL (whole chain)", total)]:
        share = f"{f / total:6.1%}" if name != "TOTAL (whole chain)" else " " * 6
        rates = "".join(f"  {images_per_s(f, m, peak):15.1f}" for m in mfus)
        print(f"  {name:60s} {f / 1e9:11.1f} {share}{rates}")
    dominant = max(stages, key=lambda s: s[1])
    print(f"  dominant stage: {dominant[0]} ({dominant[1] / total:.0%} of the chain)\n")


def parse_args() -> argparse.Namespace:
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
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    env = Env(args.real)
    size = (args.height, args.width)
    dino_size = pp.shortest_longest_size(args.height, args.width, DINO_SHORTEST, DINO_LONGEST)

    ram_model = env.build(lambda: RamModel(ram_plus_swin_large_config(args.ram_tags, RAM_IMAGE_SIZE)))
    ram, params = count_ram(env, ram_model), {"RAM++ (Swin-L + head)": n_params(ram_model)}
    del ram_model
    dinos: dict[str, dict[int, Count]] = {}
    for name, ctor in (("Grounding DINO tiny", lambda: GroundingDinoForObjectDetection(grounding_dino_tiny_config())),
                       ("MM Grounding DINO tiny",
                        lambda: MMGroundingDinoForObjectDetection(mm_grounding_dino_tiny_config()))):
        # Built with real (random, ~0.7 GB) weights: constructing it under FakeTensorMode deep-copies fake
        # parameters (its shared box heads), which corrupts the heap at interpreter exit in torch 2.14.
        model = env.build(ctor, real_weights=True)
        dinos[name] = {t: count_grounding_dino(env, model, dino_size, t) for t in args.tokens}
        params[name] = n_params(model)
        del model
    sam_model = env.build(lambda: SamModel(sam_vit_huge_config()))
    sam_enc, sam_dec = count_sam(env, sam_model, args.boxes, size)
    params["SAM ViT-H"] = n_params(sam_model)
    del sam_model
    sam2: dict[str, tuple[Count, Count]] = {}
    for label in ("large", "small"):
        model = env.build(lambda label=label: Sam2Model(sam2_hiera_config(label)))
        sam2[label] = count_sam2(env, model, args.boxes, f"Hiera-{label[0].upper()}")
        params[f"SAM 2.1 Hiera-{label[0].upper()}"] = n_params(model)
        del model

    typical = args.typical_tokens if args.typical_tokens in args.tokens else min(args.tokens)
    print(f"# Forward FLOPs per image, {args.width}x{args.height} input "
          f"({'real fp32 CPU forwards' if args.real else 'FakeTensorMode'}; GFLOPs = 1e9 FLOPs, 1 MAC = 2 FLOPs)")
    print(f"#   RAM++ {RAM_IMAGE_SIZE}x{RAM_IMAGE_SIZE}, {args.ram_tags} tags | (MM) Grounding DINO {dino_size[1]}x"
          f"{dino_size[0]} | SAM / SAM 2.1 {SAM_IMAGE_SIZE}x{SAM_IMAGE_SIZE}, {args.boxes} boxes\n")
    print("## Parameters")
    for label, count in params.items():
        print(f"  {label:60s} {count / 1e6:9.1f} M")
    print()
    print_breakdown([ram, *dinos["Grounding DINO tiny"].values(), *dinos["MM Grounding DINO tiny"].values(),
                     sam_enc, sam_dec, *sam2["large"], *sam2["small"]])

    hdr = "".join(f"  img/s@{m:.0%} MFU" for m in args.mfu)
    print(f"## Per image on one H100 (peak {args.peak_tflops:g} TFLOP/s dense bf16; img/s = peak x MFU / FLOPs)")
    print(f"  {'stage':60s} {'GFLOPs/img':>11s} {'share':>6s}{hdr}")
    for label, chunk in (("typical", typical), ("full-chunk", max(args.tokens))):
        dino = dinos["Grounding DINO tiny"][chunk]
        print_chain(f"paper, {label}: one {chunk}-token chunk", [
            (ram.name, ram.flops), (dino.name + " (+grid_sample est.)", dino.flops),
            (sam_enc.name, sam_enc.flops), (sam_dec.name, sam_dec.flops)], args.mfu, args.peak_tflops)
    mm = dinos["MM Grounding DINO tiny"][typical]
    for label in ("large", "small"):
        enc, dec = sam2[label]
        print_chain(f"fast (SAM 2.1 Hiera-{label[0].upper()}), typical: one {typical}-token chunk", [
            (ram.name, ram.flops), (mm.name + " (+grid_sample est.)", mm.flops), (enc.name, enc.flops),
            (dec.name, dec.flops)], args.mfu, args.peak_tflops)
    print("  Each further prompt chunk of an image is one more full (MM) Grounding DINO forward:")
    for t, d in dinos["Grounding DINO tiny"].items():
        print(f"    +{d.flops / 1e9:.1f} GFLOPs per extra {t}-token chunk")
    print(f"  Each further box adds ~{sam_dec.flops / args.boxes / 1e9:.2f} GFLOPs (SAM mask decoder), "
          f"~{sam2['large'][1].flops / args.boxes / 1e9:.2f} (SAM 2.1).")
    print(f"\n(done in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
