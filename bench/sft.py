"""Stage-2 step time and tokens/s on CPU with a ~100M-parameter Llama, with and without group_by_modality_length;
and the seconds `pad sft --check` takes per 100K conversations.

Writes a synthetic llava_v1_5_mix665k-like set (2/3 with an image, 1/3 text-only, 1-5 rounds of varied length,
images of mixed aspect), a random-weight Llama of `--hidden`/`--layers` (default ~100M parameters) saved as a
local checkpoint with the tiny BPE tokenizer and the tiny CLIP tower at 336 px (576 image tokens, as LLaVA-1.5,
so text-only samples are much shorter than image ones), then runs the real `pad sft` (DeepSpeed ZeRO-3 on CPU)
twice and reports, from metrics.jsonl (first step dropped as warm-up): seconds per optimizer step, tokens/s
(text + image tokens, no padding) and the padding share of the positions the LLM ran. `--check-entries N`
times `pad sft --check` over N generated entries instead.
Usage: python bench/sft.py [--steps 4] [--micro 4] [--global-batch 8] | python bench/sft.py --check-entries 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

import torch
import yaml
from torchvision.io import encode_jpeg

WORDS = ("the a dog cat red blue green small large sky water tree person car road building table chair "
         "standing sitting near under over front background photo picture image view").split()


def write_conversations(path: str, images: str, n: int, seed: int = 0) -> None:
    """`n` entries in the 665K format; image entries reference 8 generated JPEGs of mixed aspect."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(images, "coco"), exist_ok=True)
    for k, (w, h) in enumerate([(64, 48), (48, 64), (80, 40), (56, 56), (40, 72), (96, 64), (64, 64), (30, 60)]):
        pixels = torch.randint(0, 255, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(k))
        with open(os.path.join(images, "coco", f"{k}.jpg"), "wb") as f:
            f.write(encode_jpeg(pixels).numpy().tobytes())

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    with open(path, "w") as f:
        f.write("[")
        for i in range(n):
            image = rng.random() < 2 / 3
            turns = []
            for r in range(rng.randint(1, 5)):
                q = text(3, 15) + "?"
                turns += [{"from": "human", "value": ("<image>\n" + q) if image and r == 0 else q},
                          {"from": "gpt", "value": text(2, 40) + "."}]
            entry = {"id": f"bench-{i}", "conversations": turns}
            if image:
                entry["image"] = f"coco/{i % 8}.jpg"
            f.write(("," if i else "") + json.dumps(entry))
        f.write("]")


def write_llama(folder: str, hidden: int, layers: int) -> int:
    """A random Llama checkpoint with the tiny tokenizer; returns its parameter count."""
    from transformers import LlamaForCausalLM

    from trainer.models.tiny import tiny_llama_config, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = tiny_llama_config(len(tokenizer), hidden_size=hidden, layers=layers)
    config.num_attention_heads = config.num_key_value_heads = hidden // 64
    config.head_dim, config.intermediate_size = 64, int(hidden * 8 / 3) // 64 * 64
    config.max_position_embeddings = 4096
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def write_vision(folder: str) -> None:
    """The tiny CLIP tower at ViT-L/14-336's geometry (336 px, 14 px patches): 576 image tokens, as LLaVA-1.5."""
    from transformers import CLIPImageProcessor, CLIPVisionModel

    from trainer.models.tiny import tiny_vision_config

    config = tiny_vision_config()
    config.image_size = 336
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(folder)


def manifest(root: str, llm: str, group: bool, args: argparse.Namespace) -> str:
    cfg = {"model": {"vision": {"checkpoint": os.path.join(root, "clip")}, "projector": {"kind": "mlp2x_gelu"},
                     "llm": {"checkpoint": llm, "max_length": 2048, "gradient_checkpointing": True}},
           "data": {"path": os.path.join(root, "conversations.json"), "image_folder": os.path.join(root, "images"),
                    "group_by_modality_length": group, "num_workers": 1},
           "train": {"output_dir": os.path.join(root, f"run-group-{group}"), "max_steps": args.steps,
                     "global_batch_size": args.global_batch, "micro_batch_size": args.micro, "save_every": 10_000,
                     "progress": False, "tensorboard": False},
           "launch": {"mode": "local"}, "export": {"formats": []}}
    path = os.path.join(root, f"sft-group-{group}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def report(run_dir: str, group: bool) -> None:
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))][1:]
    step_s = [r["samples"] / r["samples_per_s"] for r in rows]
    tokens = sum(r["tokens"] for r in rows)
    padding = 1 - tokens / sum(r["positions"] for r in rows)
    print(f"group_by_modality_length={str(group):5}: {statistics.mean(step_s):6.2f} s/step, "
          f"{tokens / sum(step_s):7.0f} tokens/s, {sum(r['samples'] for r in rows) / sum(step_s):5.2f} samples/s, "
          f"padding {padding:5.1%} of the LLM's positions ({len(rows)} steps timed)")


def bench_steps(args: argparse.Namespace) -> None:
    from trainer.training.driver import run_sft as run

    with tempfile.TemporaryDirectory() as root:
        write_conversations(os.path.join(root, "conversations.json"), os.path.join(root, "images"), args.entries)
        params = write_llama(os.path.join(root, "llama"), args.hidden, args.layers)
        write_vision(os.path.join(root, "clip"))
        print(f"stage 2 on CPU: Llama {params / 1e6:.0f}M params ({args.layers} layers x {args.hidden}), tiny CLIP "
              f"at 336 px (576 image tokens), ZeRO-3, micro-batch {args.micro}, global batch {args.global_batch}, "
              f"{torch.get_num_threads()} threads")
        for group in (False, True):
            path = manifest(root, os.path.join(root, "llama"), group, args)
            run(path, [])
            report(os.path.join(root, f"run-group-{group}"), group)


def bench_check(n: int) -> None:
    from trainer.config.sft import SftConfig
    from trainer.data.chat.check import check_data

    with tempfile.TemporaryDirectory() as root:
        write_conversations(os.path.join(root, "c.json"), os.path.join(root, "images"), n)
        cfg = SftConfig.model_validate({"model": {"vision": {"checkpoint": "tiny-random"},
                                                  "llm": {"checkpoint": "tiny-random"}},
                                        "data": {"path": os.path.join(root, "c.json"),
                                                 "image_folder": os.path.join(root, "images")}})
        size = os.path.getsize(cfg.data.path)
        start = time.perf_counter()
        report_ = check_data(cfg)
        seconds = time.perf_counter() - start
        print(f"pad sft --check: {report_.entries} entries ({size / 1e6:.0f} MB) in {seconds:.1f} s = "
              f"{seconds / n * 1e5:.1f} s per 100K (tiny BPE tokenizer, {os.cpu_count()} cores), "
              f"{len(report_.bad)} bad")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration (the first is warm-up)")
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--global-batch", type=int, default=8)
    ap.add_argument("--entries", type=int, default=400, help="generated conversations for the step benchmark")
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=14)
    ap.add_argument("--check-entries", type=int, help="time `pad sft --check` over this many entries instead")
    args = ap.parse_args()
    if args.check_entries:
        bench_check(args.check_entries)  # the tokenizer may use every core, as `pad sft --check` does
    else:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # DataLoader workers fork
        bench_steps(args)


if __name__ == "__main__":
    main()
