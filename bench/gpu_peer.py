"""The peer: the same per-image work done the way Grounded-SAM's RAM demo loop does it, for PAD / peer.

Grounded-SAM (automatic_label_ram_demo.py) runs one image at a time in fp32: the image is resized and
normalised on the host (PIL, torchvision transforms) for RAM, the tags are joined into one caption, Grounding
DINO's outputs are moved to the host and thresholded there, torchvision NMS runs on the host boxes, and SAM
gets the boxes through its predictor. Here the same models (the very modules PAD's loop ran) are driven
that way through transformers' own processors (GroundingDinoProcessor, SamProcessor / Sam2Processor) on
the host, the masks are post-processed on the host (`post_process_masks` on `.cpu()` outputs, as
transformers' documentation does) and encoded with pycocotools, so the output is a PAD record's labels.
The workload matches PAD's: the `max_tags` best tags, every query kept, NMS 0.5, `max_boxes` boxes.
"""

from __future__ import annotations

import numpy as np
import torch
from gpu_models import MAX_BOXES, MAX_TAGS, ChainParts
from PIL import Image
from pycocotools import mask as mask_utils
from torchvision.ops import nms
from transformers import GroundingDinoProcessor, Sam2Processor, SamProcessor

from pad_pipeline.annotate.models.grounding_text import tag_phrase

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class PeerLoop:
    """Grounded-SAM's loop over `parts` on `device`; `__call__(image)` -> label dicts of one image."""

    def __init__(self, parts: ChainParts, device: torch.device):
        self.parts, self.device = parts, device
        self.dino = GroundingDinoProcessor(image_processor=parts.detector_processor, tokenizer=parts.tokenizer)
        seg_cls = Sam2Processor if parts.segmenter_kind == "sam2" else SamProcessor
        self.seg = seg_cls(image_processor=parts.segmenter_processor)
        self.ram_size = parts.ram.cfg.swin.image_size

    def tags(self, pil: Image.Image) -> list[str]:
        """RAM++ on a host-resized, host-normalised image; the best `max_tags` distinct tags."""
        arr = np.asarray(pil.resize((self.ram_size, self.ram_size), Image.BILINEAR), dtype=np.float32) / 255.0
        pixels = torch.from_numpy(((arr - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy())[None]
        scores = torch.sigmoid(self.parts.ram(pixels.to(self.device)))[0].cpu()
        tags: list[str] = []
        for i in torch.argsort(scores, descending=True).tolist():
            if self.parts.tags[i] not in tags:
                tags.append(self.parts.tags[i])
            if len(tags) == MAX_TAGS:
                break
        return tags

    def boxes(self, pil: Image.Image, tags: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        caption = " . ".join(tag_phrase(t) for t in tags) + " ."
        inputs = self.dino(images=pil, text=caption, return_tensors="pt").to(self.device)
        out = self.parts.detector(**inputs)
        out.logits, out.pred_boxes = out.logits.cpu(), out.pred_boxes.cpu()
        result = self.dino.post_process_grounded_object_detection(
            out, inputs["input_ids"].cpu(), threshold=0.0, text_threshold=0.0, target_sizes=[pil.size[::-1]])[0]
        keep = nms(result["boxes"], result["scores"], 0.5)[:MAX_BOXES]
        return result["boxes"][keep], result["scores"][keep], [result["text_labels"][i] for i in keep.tolist()]

    def masks(self, pil: Image.Image, boxes: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        inputs = self.seg(images=pil, input_boxes=[boxes.tolist()], return_tensors="pt")
        extra = {k: inputs[k].cpu() for k in ("reshaped_input_sizes",) if k in inputs}
        out = self.parts.segmenter(pixel_values=inputs["pixel_values"].to(self.device),
                                   input_boxes=inputs["input_boxes"].float().to(self.device), multimask_output=False)
        masks = self.seg.image_processor.post_process_masks(out.pred_masks.cpu(), inputs["original_sizes"].cpu(),
                                                            *extra.values())[0][:, 0]
        return masks.numpy(), out.iou_scores[0, :, 0].cpu()

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> list[dict]:
        pil = Image.fromarray(image)
        tags = self.tags(pil)
        boxes, scores, names = self.boxes(pil, tags)
        if not len(boxes):
            return []
        masks, mask_scores = self.masks(pil, boxes)
        labels = []
        for box, score, name, mask, mask_score in zip(boxes.tolist(), scores.tolist(), names, masks, mask_scores,
                                                      strict=True):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            labels.append({"tag": name, "bbox": [round(c, 1) for c in box], "score": round(score, 4),
                           "mask_score": round(float(mask_score), 4), "area": int(mask_utils.area(rle)),
                           "rle_mask": rle["counts"].decode("ascii")})
        return labels
