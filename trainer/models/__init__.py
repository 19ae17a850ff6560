"""Models of stage 1: projectors, the frozen vision encoder + LLM assembly, tiny test presets, loaders."""
