"""A PAD sample through the builder and the collator: geometry, caption labels, regions, skip counts."""

import numpy as np
import torch

from pad_pipeline.dataset.reader import iter_committed_samples
from pad_pipeline.dataset.rle import decode_mask
from pad_pipeline.dataset.synthetic import random_field_build
from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.patches.sample import PatchSampleBuilder
from trainer.models.tiny import tiny_image_processor, tiny_tokenizer


def test_builder_and_collator(tmp_path):
    random_field_build(str(tmp_path), num_samples=5, shard_size=5)
    samples = list(iter_committed_samples(str(tmp_path)))
    tok = tiny_tokenizer()
    spec = ProcessorSpec.from_processor(tiny_image_processor(), "crop")
    builder = PatchSampleBuilder(tok, spec, grid=8, max_caption_tokens=64)
    built = [builder(s) for s in samples]

    first, rec = built[0], samples[0].record
    assert first.pixels.shape == (3, 112, 112) and first.pixels.dtype == torch.uint8
    # The plain template: [BOS, <image>] + caption + "\n", loss on the caption only.
    assert first.input_ids[:2] == [tok.bos_token_id, IMAGE_TOKEN_INDEX]
    assert tok.decode(first.input_ids[2:]) == rec.caption + "\n"
    assert first.labels == [IGNORE_INDEX, IGNORE_INDEX] + first.input_ids[2:]
    # The rectangle label covers a quarter of the image: a sizeable, contiguous token set.
    w, h = rec.size
    rect = decode_mask(rec.labels[0].rle_mask, h, w)
    assert rect.sum() == rec.labels[0].area
    assert 4 <= int(first.region_masks[0].sum()) <= 24
    # Sample 4 carries a 1-pixel label that no token can select: skipped and counted.
    assert len(samples[4].record.labels) == 3 and built[4].skipped_regions == 1 and len(built[4].tag_ids) == 2

    batch = PatchCollator(tok.pad_token_id)(built)
    n = max(len(b.input_ids) for b in built)
    assert batch["input_ids"].shape == (5, n) and batch["region_masks"].shape == (5, 2, 64)
    assert (batch["labels"][:, :2] == IGNORE_INDEX).all() and (batch["input_ids"][:, 1] == IMAGE_TOKEN_INDEX).all()
    short = int(np.argmin([len(b.input_ids) for b in built]))
    k = len(built[short].input_ids)
    assert (batch["labels"][short, k:] == IGNORE_INDEX).all() and batch["attention_mask"][short, k:].sum() == 0
    assert batch["labels"][0, 2:len(first.input_ids)].tolist() == first.input_ids[2:]
    assert int(batch["regions"]) == 10 and int(batch["skipped_regions"]) == 1
    assert batch["tag_mask"][0, 0].sum() == len(first.tag_ids[0])
