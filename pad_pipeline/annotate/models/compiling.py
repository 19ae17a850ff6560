"""`models.compile: true`: torch.compile of the image encoders that dominate a wrapper's FLOPs.

The wrappers call `compile_encoder(module)` when they are built: SAM's and SAM 2's image encoder and
RAM's Swin (the detector is left eager: its deformable attention breaks Dynamo's graphs). The module is
compiled in place (`nn.Module.compile`), so parameter names, state dicts and hooks stay as they were;
the first call with a new input shape pays the compilation (the annotator's warm-up pays the first),
and a second batch size marks the batch dimension dynamic instead of compiling once per size.
Compiled kernels fuse and reorder float sums, so the output equals the eager one up to rounding:
a speed knob, off by default and left out of the build's config hash, like the text-encoder cache.
`BACKEND` is inductor; bench/gpu.py's CPU smoke run sets "eager" (Dynamo's tracing without code
generation, which on a CPU takes minutes). `MODE` is `models.compile_mode` ("reduce-overhead" captures
CUDA graphs: the detector's bucketed shapes and the encoders' fixed batches make that possible).
`models.compile_detector` compiles Grounding DINO's Swin backbone too (opt-in: not measured yet).
"""

from __future__ import annotations

from torch import nn

BACKEND = "inductor"
MODE = "default"  # `models.compile_mode`, set by the annotator before its wrappers are built


def compile_encoder(module: nn.Module) -> nn.Module:
    """`module`, compiled in place with `BACKEND` and `MODE` (returned for chaining)."""
    if BACKEND == "inductor" and MODE != "default":
        module.compile(backend=BACKEND, mode=MODE)
    else:
        module.compile(backend=BACKEND)
    return module
