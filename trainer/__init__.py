"""The training side of PAD: stage-1 patch-aligned projector pretraining (`pad pretrain`), stage-2 instruction
tuning (`pad sft`), exports and the paper's measurements (`pad analyze`).

Packages by role: `config/` (manifest schemas), `models/` (pure `nn.Module`s and their loading; never imports
`data/` or `training/`), `data/` (`patches/` for stage 1, `chat/` for stage 2), `training/` (the one loop,
DeepSpeed in `engine` alone, Ray Train in `launch` alone, checkpoints, the driver), `stages/` (what each stage
adds to the loop), `export/` (PAD's format, transformers Llava, LLaVA's own) and `analysis/`.
"""
