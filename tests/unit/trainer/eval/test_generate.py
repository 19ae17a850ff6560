"""Batched greedy generation: prompts as training rendered them, left padding that changes no answer."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pad_pipeline.core.runtime import TINY_RANDOM
from trainer.config.sections import LlmConfig, ModelConfig, VisionConfig
from trainer.constants import IMAGE_TOKEN, IMAGE_TOKEN_INDEX
from trainer.data.chat.templates import Turn, get_template
from trainer.data.chat.tokens import tokenize_conversation
from trainer.data.geometry import ProcessorSpec
from trainer.eval.generate import Generator, Query, cut_at_stop, left_pad, prompt_ids
from trainer.models.loading import build_vlm


@pytest.fixture(scope="module")
def vlm():
    torch.set_flush_denormal(True)
    cfg = ModelConfig(vision=VisionConfig(checkpoint=TINY_RANDOM), llm=LlmConfig(checkpoint=TINY_RANDOM))
    return build_vlm(cfg)


def _png(seed: int, size: tuple[int, int]) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("template", ["vicuna_v1", "plain"])
def test_prompt_is_the_training_prefix(vlm, template):
    """The prompt's ids are exactly the ids training gave the same turns, up to the answer."""
    t = get_template(template)
    question = None if template == "plain" else "what is red?"
    content = IMAGE_TOKEN if question is None else f"{IMAGE_TOKEN}\n{question}"
    trained = tokenize_conversation(vlm.tokenizer, t, [Turn("human", content), Turn("gpt", "a red circle")], 512, 1)
    ids = prompt_ids(vlm.tokenizer, t, question)
    first_answer = next(i for i, label in enumerate(trained.labels) if label != -100)
    assert ids[0] == vlm.tokenizer.bos_token_id and ids.count(IMAGE_TOKEN_INDEX) == 1
    # the answer's first token may merge with the prompt's last characters; everything before it is identical
    assert ids[:first_answer - 1] == trained.input_ids[:first_answer - 1]
    if template == "plain":
        assert ids == [vlm.tokenizer.bos_token_id, IMAGE_TOKEN_INDEX]


def test_left_pad_moves_each_row_to_the_right():
    embeds = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)
    attention = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    padded, mask = left_pad(embeds, attention)
    assert mask.tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]
    assert padded[1, 2:, 0].tolist() == [4.0, 5.0] and padded[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_cut_at_stop():
    assert cut_at_stop(" a red circle\nmore", "\n") == "a red circle"
    assert cut_at_stop("[0.1, 0.2, 0.3, 0.4]", "") == "[0.1, 0.2, 0.3, 0.4]"


@pytest.mark.parametrize("template", ["vicuna_v1", "plain"])
def test_batched_answers_equal_one_at_a_time(vlm, template):
    """Rows of different prompt lengths and image sizes in one batch answer as they do alone."""
    spec = ProcessorSpec.from_processor(vlm.processor, "pad")
    gen = Generator(vlm.model.eval(), vlm.tokenizer, get_template(template), spec, max_new_tokens=6)
    questions = [None, None, None] if template == "plain" else ["red?", "where is the large blue square?", "a"]
    sizes = [(40, 30), (24, 48), (32, 32)]
    queries = [Query(_png(i, size), q) for i, (size, q) in enumerate(zip(sizes, questions, strict=True))]
    together = gen.answers(queries, batch_size=3)
    alone = [gen.answers([q], batch_size=1)[0] for q in queries]
    assert together == alone
    assert len(together) == 3 and all(isinstance(a, str) for a in together)
    assert any(together)  # random weights still emit some text within 6 tokens
