"""Tiny random-weight stand-ins for CLIP, (MM) Grounding DINO, SAM and SAM 2 (`checkpoint: tiny-random`).

They are the SAME transformers classes the real checkpoints load into, built from tiny configs, with
weights drawn from a seeded generator and tokenizers built in code with the `tokenizers` library, so
tests and CI exercise the real code path without downloading anything. Everything here is a
deterministic function of its arguments (the global torch RNG is left untouched).
"""

from __future__ import annotations

from typing import Any, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    MMGroundingDinoConfig,
    MMGroundingDinoForObjectDetection,
    PreTrainedTokenizerFast,
    Sam2Config,
    Sam2ImageProcessor,
    Sam2Model,
    SamConfig,
    SamImageProcessor,
    SamModel,
)

from pad_pipeline.annotate.models.vocabulary import packaged_tags
from pad_pipeline.core.runtime import seeded

_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
_PUNCT = list(".,?!'-/&()")

# Grounding DINO hard-codes BERT-uncased ids of its phrase delimiters ([CLS] 101, [SEP] 102, "." 1012,
# "?" 1029) to build its per-phrase text attention, so the tiny vocabulary keeps BERT's layout.
_BERT_FIXED = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
_BERT_VOCAB_SIZE = 1040

CLIP_PROMPT_WORDS = ("a", "photo", "of", "an", "the")
TINY_CLIP_IMAGE_SIZE = 32
TINY_DINO_SHORTEST, TINY_DINO_LONGEST = 64, 96
TINY_DINO_MAX_TEXT_LEN = 48
TINY_SAM_IMAGE_SIZE = 64
TINY_SAM2_IMAGE_SIZE = 64


def default_tag_words() -> list[str]:
    """The whole words of the packaged tags: the tiny tokenizers' vocabulary."""
    return sorted({w for tag in packaged_tags() for w in tag.lower().split()})


def _wordpiece_tokenizer(vocab: dict[str, int], unk: str, template: str, specials: list[tuple[str, int]]
                         ) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
    tok.decoder = decoders.WordPiece()
    return tok


def _pieces(words: Sequence[str]) -> list[str]:
    """Whole words first, then single characters and their continuations: any a-z0-9 word tokenizes."""
    chars = _LETTERS + _PUNCT
    ordered = list(dict.fromkeys([*chars, *("##" + c for c in _LETTERS), *words]))
    return [p for p in ordered if p]


def tiny_bert_tokenizer(words: Sequence[str] | None = None) -> PreTrainedTokenizerFast:
    """A BERT-uncased-style WordPiece tokenizer whose special/delimiter ids match bert-base-uncased."""
    words = default_tag_words() if words is None else list(words)
    vocab = dict(_BERT_FIXED)
    free = (i for i in range(_BERT_VOCAB_SIZE) if i not in vocab.values())
    for piece in _pieces(words):
        if piece not in vocab:
            vocab[piece] = next(free)
    for i in free:  # fill the gaps so ids are dense, like BERT's [unusedN]
        vocab[f"[unused{i}]"] = i
    specials = [("[CLS]", 101), ("[SEP]", 102)]
    tok = _wordpiece_tokenizer(vocab, "[UNK]", "[CLS] $A [SEP]", specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
                                   model_max_length=512)


def tiny_clip_tokenizer(words: Sequence[str] | None = None) -> PreTrainedTokenizerFast:
    """A lower-casing WordPiece tokenizer with CLIP's start/end tokens (the end token is pooled)."""
    words = default_tag_words() if words is None else list(words)
    specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for piece in _pieces([*CLIP_PROMPT_WORDS, *words]):
        vocab.setdefault(piece, len(vocab))
    template = "<|startoftext|> $A <|endoftext|>"
    tok = _wordpiece_tokenizer(vocab, "<unk>", template, [("<|startoftext|>", 2), ("<|endoftext|>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|startoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<pad>", model_max_length=32)


def tiny_clip_config(vocab_size: int) -> CLIPConfig:
    text = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, pad_token_id=0, bos_token_id=2,
                eos_token_id=3)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=TINY_CLIP_IMAGE_SIZE, patch_size=8)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


def tiny_clip_image_processor() -> CLIPImageProcessor:
    s = TINY_CLIP_IMAGE_SIZE
    return CLIPImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s})


def _tiny_grounding_dino_kwargs(vocab_size: int) -> dict[str, Any]:
    # A 4-stage Swin with 3 outputs + 1 extra conv level, as in grounding-dino-tiny, only narrower.
    # d_model 64: its input projections use GroupNorm(32, d_model), which needs >1 value per group on
    # the 1x1 maps that small images give. Two decoder layers: transformers ties bbox heads 1.. to
    # head 0 and refuses a model with only one.
    backbone = dict(model_type="swin", image_size=TINY_DINO_LONGEST, patch_size=4, embed_dim=8,
                    depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, out_indices=[2, 3, 4])
    text = dict(model_type="bert", vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return dict(backbone_config=backbone, text_config=text, num_queries=16, d_model=64, encoder_layers=1,
                decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_n_points=2, decoder_n_points=2,
                max_text_len=TINY_DINO_MAX_TEXT_LEN, num_feature_levels=4, disable_custom_kernels=True)


def tiny_grounding_dino_config(vocab_size: int = _BERT_VOCAB_SIZE) -> GroundingDinoConfig:
    return GroundingDinoConfig(**_tiny_grounding_dino_kwargs(vocab_size))


def tiny_mm_grounding_dino_config(vocab_size: int = _BERT_VOCAB_SIZE) -> MMGroundingDinoConfig:
    """MM Grounding DINO has Grounding DINO's architecture: the same tiny shapes."""
    return MMGroundingDinoConfig(**_tiny_grounding_dino_kwargs(vocab_size))


def tiny_grounding_dino_image_processor() -> GroundingDinoImageProcessor:
    return GroundingDinoImageProcessor(size={"shortest_edge": TINY_DINO_SHORTEST,
                                             "longest_edge": TINY_DINO_LONGEST})


def tiny_sam_config() -> SamConfig:
    s, patch, width = TINY_SAM_IMAGE_SIZE, 8, 32
    vision = dict(hidden_size=width, output_channels=width, num_hidden_layers=2, num_attention_heads=2,
                  image_size=s, patch_size=patch, window_size=4, global_attn_indexes=[1],
                  num_pos_feats=width // 2, mlp_dim=64)
    prompt = dict(hidden_size=width, image_size=s, patch_size=patch, mask_input_channels=4)
    decoder = dict(hidden_size=width, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                   iou_head_hidden_dim=width)
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def tiny_sam_image_processor() -> SamImageProcessor:
    s = TINY_SAM_IMAGE_SIZE
    m = s // 4  # the mask decoder's low-resolution side
    return SamImageProcessor(size={"longest_edge": s}, pad_size={"height": s, "width": s},
                             mask_size={"longest_edge": m}, mask_pad_size={"height": m, "width": m})


def tiny_clip(seed: int) -> tuple[CLIPModel, PreTrainedTokenizerFast, CLIPImageProcessor]:
    tokenizer = tiny_clip_tokenizer()
    with seeded(seed):
        model = CLIPModel(tiny_clip_config(len(tokenizer)))
    return model.eval(), tokenizer, tiny_clip_image_processor()


def tiny_grounding_dino(seed: int) -> tuple[GroundingDinoForObjectDetection, PreTrainedTokenizerFast,
                                           GroundingDinoImageProcessor]:
    tokenizer = tiny_bert_tokenizer()
    with seeded(seed):
        model = GroundingDinoForObjectDetection(tiny_grounding_dino_config(len(tokenizer)))
    return model.eval(), tokenizer, tiny_grounding_dino_image_processor()


def tiny_sam(seed: int) -> tuple[SamModel, SamImageProcessor]:
    with seeded(seed):
        model = SamModel(tiny_sam_config())
    return model.eval(), tiny_sam_image_processor()


def tiny_mm_grounding_dino(seed: int) -> tuple[MMGroundingDinoForObjectDetection, PreTrainedTokenizerFast,
                                              GroundingDinoImageProcessor]:
    """MM Grounding DINO: Grounding DINO's architecture (and tiny config), its own class."""
    tokenizer = tiny_bert_tokenizer()
    with seeded(seed):
        model = MMGroundingDinoForObjectDetection(tiny_mm_grounding_dino_config(len(tokenizer)))
    return model.eval(), tokenizer, tiny_grounding_dino_image_processor()


def tiny_sam2_config() -> Sam2Config:
    # A 4-stage Hiera (stride 4, 8, 16, 32 -> 16, 8, 4, 2 px maps at 64 px) with one global block; the
    # mask decoder reads the 4x4 map as its image embedding and the 16x16 and 8x8 ones as high-res features.
    s, width = TINY_SAM2_IMAGE_SIZE, 32
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1, image_size=[s, s],
                    blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
                    num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[4, 2, 2, 1],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[4, 4])
    vision = dict(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8], fpn_hidden_size=width,
                  backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]])
    prompt = dict(hidden_size=width, image_size=s, patch_size=16, mask_input_channels=4)
    decoder = dict(hidden_size=width, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                   iou_head_hidden_dim=width)
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def tiny_sam2_image_processor() -> Sam2ImageProcessor:
    s = TINY_SAM2_IMAGE_SIZE
    return Sam2ImageProcessor(size={"height": s, "width": s}, mask_size={"height": s // 4, "width": s // 4})


def tiny_sam2(seed: int) -> tuple[Sam2Model, Sam2ImageProcessor]:
    with seeded(seed):
        model = Sam2Model(tiny_sam2_config())
    return model.eval(), tiny_sam2_image_processor()
