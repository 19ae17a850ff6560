"""Run in the transformers-4 stack: load RUN/export-hf as a user of transformers 4.x does
(`LlavaForConditionalGeneration.from_pretrained`, `AutoProcessor.from_pretrained`, the chat template), and save
what PAD's side compares: the loading report, the processor's ids and pixels, the logits (float32).

usage: load_hf.py EXPORT IMAGE OUT.pt
"""

import sys

import torch
import transformers
from PIL import Image
from transformers import AutoProcessor, AutoTokenizer, LlavaForConditionalGeneration

folder, image, out = sys.argv[1:4]
model, info = LlavaForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32,
                                                            output_loading_info=True)
processor = AutoProcessor.from_pretrained(folder)
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this?"}]}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=Image.open(image).convert("RGB"), text=prompt, return_tensors="pt")
with torch.no_grad():
    logits = model.eval()(**inputs).logits
    generated = model.generate(**inputs, max_new_tokens=2, do_sample=False)
slow = AutoTokenizer.from_pretrained(folder, use_fast=False)
torch.save({"version": transformers.__version__, "info": {k: list(map(str, v)) for k, v in info.items()},
            "prompt": prompt, "input_ids": inputs["input_ids"], "pixel_values": inputs["pixel_values"],
            "logits": logits, "generated": generated.shape[1] - inputs["input_ids"].shape[1],
            "tokenizer": type(processor.tokenizer).__name__,
            "image_processor": type(processor.image_processor).__name__,
            "slow_ids": slow(prompt).input_ids}, out)
print(transformers.__version__)
