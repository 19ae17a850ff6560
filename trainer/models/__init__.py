"""The model library: projectors, the VLM (vision tower + projector + LLM), its losses and loaders, tiny presets.

Pure `nn.Module`s and functions: never imports `trainer.data` or `trainer.training` (nor DeepSpeed or Ray)."""
