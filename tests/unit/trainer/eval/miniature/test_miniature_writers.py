"""The miniature's files read back as users' tools read the real ones: the 665K parser, pickle + pycocotools."""

import io
import json
import os
import pickle
import tarfile

import numpy as np
from PIL import Image
from pycocotools.coco import COCO

from pad_pipeline.dataset.reader import committed_shard_urls
from pad_pipeline.dataset.shapes import SyntheticShapesConfig, build_synthetic
from trainer.data.chat.conversations import BadSample, parse_entry
from trainer.eval.box_answer import REC_PROMPT, parse_box
from trainer.eval.miniature.scenes import rec_scenes
from trainer.eval.miniature.writers import write_coco_captions, write_rec_conversations, write_refer
from trainer.eval.readers.captions import read_captions
from trainer.eval.readers.refer import read_refer

CFG = SyntheticShapesConfig(out="unused", num_scenes=12, seed=3)


def test_rec_conversations_parse_as_665k_entries_with_padded_square_boxes(tmp_path):
    scenes = rec_scenes(CFG, expressions_per_image=3)
    n = write_rec_conversations(scenes, str(tmp_path / "rec.json"), str(tmp_path / "images"), "shapes")
    entries = json.load(open(tmp_path / "rec.json"))
    assert n == len(entries) == len(scenes) and len(scenes) >= 10
    for entry, scene in zip(entries, scenes, strict=True):
        assert not isinstance(parse_entry(entry, 0), BadSample)
        turns = entry["conversations"]
        assert turns[0]["value"].startswith("<image>\n" + REC_PROMPT.format(expression=""))
        assert all("<image>" not in t["value"] for t in turns[1:])
        assert len(turns) == 2 * len(scene.expressions) and 1 <= len(scene.expressions) <= 3
        pairs = zip(turns[::2], turns[1::2], strict=True)
        for (shape, expression), (q, a) in zip(scene.expressions, pairs, strict=True):
            assert q["value"].endswith(expression) and (q["from"], a["from"]) == ("human", "gpt")
            x0, y0, x1, y1 = scene.shapes[shape].box  # square scenes: the padded square is the image
            assert np.allclose(parse_box(a["value"]), (x0 / 112, y0 / 112, x1 / 112, y1 / 112), atol=0.005)
        image = Image.open(tmp_path / "images" / entry["image"])
        assert image.size == (112, 112)


def test_rec_images_are_the_stage_1_builds_images_byte_for_byte(tmp_path):
    build = CFG.model_copy(update={"out": str(tmp_path / "build"), "num_scenes": 4})
    build_synthetic(build)
    scenes = rec_scenes(build, 2)
    write_rec_conversations(scenes, str(tmp_path / "rec.json"), str(tmp_path / "images"), "shapes")
    stored = []
    for url in committed_shard_urls(build.out):
        with tarfile.open(url) as tar:
            stored += [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".jpg")]
    written = [open(tmp_path / "images" / e["image"], "rb").read() for e in json.load(open(tmp_path / "rec.json"))]
    assert sorted(stored) == sorted(written)


def test_refer_files_load_with_pickle_and_pycocotools(tmp_path):
    scenes = rec_scenes(CFG, expressions_per_image=2)
    paths = write_refer(scenes, str(tmp_path / "refcoco"), "shapes", split="val")
    assert os.path.basename(paths["refs"]) == "refs(unc).p"
    raw = open(paths["refs"], "rb").read()
    assert raw[:2] == b"\x80\x02"  # pickle protocol 2, as the refer toolkit's files
    refs = pickle.load(io.BytesIO(raw))
    coco = COCO(paths["instances"])
    assert len(refs) == sum(len(s.expressions) for s in scenes)
    by_image = {s.index + 1: s for s in scenes}
    for ref in refs:
        assert set(ref) == {"sent_ids", "file_name", "ann_id", "ref_id", "image_id", "split", "sentences",
                            "category_id"}
        assert ref["split"] == "val" and ref["sent_ids"] == [ref["sentences"][0]["sent_id"]]
        assert set(ref["sentences"][0]) == {"tokens", "raw", "sent_id", "sent"}
        ann = coco.loadAnns(ref["ann_id"])[0]
        image = coco.loadImgs(ref["image_id"])[0]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        assert ref["file_name"] == image["file_name"][:-4] + f"_{ref['ann_id']}.jpg"
        scene = by_image[ref["image_id"]]
        shape = next(k for k, e in scene.expressions if e == ref["sentences"][0]["sent"])
        x0, y0, x1, y1 = scene.shapes[shape].box
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert coco.loadCats(ann["category_id"])[0]["name"] == scene.shapes[shape].kind
        assert (coco.annToMask(ann) == scene.scene.masks[shape]).all()  # the exact mask, as RLE
        assert os.path.isfile(os.path.join(paths["images"], image["file_name"]))
        assert (image["width"], image["height"]) == (112, 112)


def test_coco_captions_load_with_pycocotools(tmp_path):
    scenes = rec_scenes(CFG, 1)
    write_coco_captions(scenes, str(tmp_path / "captions_val.json"), str(tmp_path / "images"), "shapes")
    coco = COCO(str(tmp_path / "captions_val.json"))
    assert len(coco.getImgIds()) == len(scenes)
    for scene in scenes:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=scene.index + 1))
        assert [a["caption"] for a in anns] == [scene.scene.caption]
        assert os.path.isfile(tmp_path / "images" / coco.loadImgs(scene.index + 1)[0]["file_name"])


def test_pad_evals_readers_read_the_written_files_back(tmp_path):
    scenes = rec_scenes(CFG, expressions_per_image=2)
    paths = write_refer(scenes, str(tmp_path / "refcoco"), "shapes", split="val")
    write_coco_captions(scenes, str(tmp_path / "captions.json"), paths["images"], "shapes")
    items = read_refer(paths["refs"], paths["instances"], paths["images"], "val")
    expected = [(e, s.shapes[k].box) for s in scenes for k, e in s.expressions]
    assert [(i.expression, i.box) for i in items] == expected
    captions = read_captions(str(tmp_path / "captions.json"), paths["images"])
    assert [c.references for c in captions] == [(s.scene.caption,) for s in scenes]
