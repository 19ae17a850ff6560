"""Loader throughput: samples/s per CPU core from PAD shards to ready batches at 336 px.

Writes a synthetic PAD build (JPEGs of `--min-side`..`--max-side` px, 2-3 masks each), then times one
process (one core, no DataLoader workers) turning it into collated micro-batches: JPEG decode, CLIP
geometry (resize + centre crop to 336), normalisation, caption tokens, RLE decode and mask -> 24 x 24
token sets. Usage: python bench/loader.py [--samples 400] [--min-side 320 --max-side 640]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.utils.data import DataLoader
from transformers import CLIPImageProcessor

from pad_pipeline.dataset.synthetic import random_field_build
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.patches.sample import PatchSampleBuilder
from trainer.data.patches.stream import PadStream, list_shards
from trainer.models.tiny import tiny_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--min-side", type=int, default=320)
    ap.add_argument("--max-side", type=int, default=640)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--aspect", choices=["crop", "pad"], default="crop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        random_field_build(out, args.samples, shard_size=100, min_side=args.min_side, max_side=args.max_side)
        shards = list_shards(out)
        # openai/clip-vit-large-patch14-336's processor settings (no download).
        processor = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
        spec = ProcessorSpec.from_processor(processor, args.aspect)
        tok = tiny_tokenizer()
        builder = PatchSampleBuilder(tok, spec, grid=24, max_caption_tokens=2048 - 577)
        stream = PadStream(shards, builder, rank=0, world=1, seed=0, shuffle=True, start=0, micro_batch=args.batch)
        loader = DataLoader(stream, batch_size=args.batch, num_workers=0,
                            collate_fn=PatchCollator(tok.pad_token_id))
        it = iter(loader)
        next(it)  # warm-up (first shard read, tokenizer cache)
        n_batches = args.samples // args.batch
        start = time.perf_counter()
        for _ in range(n_batches):
            batch = next(it)
        elapsed = time.perf_counter() - start
        rate = n_batches * args.batch / elapsed
        print(f"loader: {rate:.0f} samples/s on one core ({args.aspect}, {args.min_side}-{args.max_side} px "
              f"JPEGs -> 336 px, {n_batches} batches of {args.batch}, "
              f"pixel_values {tuple(batch['pixel_values'].shape)}, "
              f"{int(batch['regions'])} regions in the last batch); target >= 200 per core; "
              f"cores on this machine: {os.cpu_count()}")


if __name__ == "__main__":
    main()
