"""The real checkpoints' architectures, written out as configs (nothing is downloaded, no weight is read).

bench/flops.py counts FLOPs on models built from these, bench/gpu.py times models built from them with
random weights. Each function names the checkpoint whose config.json it reproduces; RAM++ comes from
PAD's own `ram_plus_swin_large_config` (the official Swin-L/384 checkpoint's shapes).

  * grounding-dino-tiny / MM Grounding DINO tiny: Swin-T (96, [2,2,6,2], window 7) + bert-base-uncased,
    6 + 6 layers, 900 queries, 256 text tokens. `GroundingDinoConfig()`'s defaults are these too.
  * sam-vit-huge: ViT-H/16 at 1024 (1280 wide, 32 layers). `SamConfig()`'s defaults are ViT-B.
  * sam2.1-hiera-small / -large: transformers' convert_sam2_to_hf.py values. `Sam2Config()` is Hiera-T.
  * clip-vit-large-patch14-336 vision tower and a Vicuna-7B-v1.5-shaped Llama (Llama-2-7B shapes).
"""

from __future__ import annotations

from transformers import (
    CLIPVisionConfig,
    GroundingDinoConfig,
    LlamaConfig,
    MMGroundingDinoConfig,
    Sam2Config,
    SamConfig,
)

RAM_TAGS = 4585  # ram_tag_list.txt
RAM_IMAGE_SIZE = 384
DINO_SHORTEST, DINO_LONGEST = 800, 1333  # grounding-dino-tiny's preprocessor_config.json
SAM_IMAGE_SIZE = 1024


def grounding_dino_tiny_config(cls: type[GroundingDinoConfig] | type[MMGroundingDinoConfig] = GroundingDinoConfig
                               ) -> GroundingDinoConfig | MMGroundingDinoConfig:
    """IDEA-Research/grounding-dino-tiny (or, with MMGroundingDinoConfig, its MM retraining's same shapes)."""
    backbone = dict(model_type="swin", image_size=224, patch_size=4, num_channels=3, embed_dim=96,
                    depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4.0,
                    qkv_bias=True, hidden_act="gelu", layer_norm_eps=1e-5,
                    out_features=["stage2", "stage3", "stage4"])
    text = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
    return cls(
        backbone_config=backbone, text_config=text, d_model=256, num_queries=900,
        encoder_layers=6, decoder_layers=6, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_n_points=4, decoder_n_points=4,
        num_feature_levels=4, max_text_len=256, two_stage=True, query_dim=4, activation_function="relu",
        position_embedding_type="sine", positional_embedding_temperature=20, embedding_init_target=True,
        decoder_bbox_embed_share=True, two_stage_bbox_embed_share=False, layer_norm_eps=1e-5,
        disable_custom_kernels=True)


def mm_grounding_dino_tiny_config() -> MMGroundingDinoConfig:
    """openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det: Grounding DINO tiny's shapes."""
    config = grounding_dino_tiny_config(MMGroundingDinoConfig)
    assert isinstance(config, MMGroundingDinoConfig)
    return config


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


_HIERA = {  # facebook/sam2.1-hiera-*: Hiera trunk; the FPN neck, prompt encoder and mask decoder are shared
    "small": dict(hidden_size=96, embed_dim_per_stage=[96, 192, 384, 768], num_attention_heads_per_stage=[1, 2, 4, 8],
                  blocks_per_stage=[1, 2, 11, 2], global_attention_blocks=[7, 10, 13],
                  window_size_per_stage=[8, 4, 14, 7], window_positional_embedding_background_size=[7, 7]),
    "large": dict(hidden_size=144, embed_dim_per_stage=[144, 288, 576, 1152],
                  num_attention_heads_per_stage=[2, 4, 8, 16], blocks_per_stage=[2, 6, 36, 4],
                  global_attention_blocks=[23, 33, 43], window_size_per_stage=[8, 4, 16, 8],
                  window_positional_embedding_background_size=[7, 7]),
}


def sam2_hiera_config(size: str) -> Sam2Config:
    """facebook/sam2.1-hiera-small or -large at 1024 x 1024."""
    trunk = dict(_HIERA[size], model_type="sam2_hiera_det_model", image_size=[SAM_IMAGE_SIZE, SAM_IMAGE_SIZE])
    channels = list(reversed(trunk["embed_dim_per_stage"]))
    return Sam2Config(vision_config=dict(backbone_config=trunk, backbone_channel_list=channels))


def clip_vit_large_336_config() -> CLIPVisionConfig:
    """openai/clip-vit-large-patch14-336's vision tower (24 x 24 patches + CLS)."""
    return CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                            image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
                            layer_norm_eps=1e-5)


def vicuna_7b_config() -> LlamaConfig:
    """lmsys/vicuna-7b-v1.5 (Llama-2-7B): 4096 wide, 32 layers, 11008 FFN, 32 heads, 32000 tokens."""
    return LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
