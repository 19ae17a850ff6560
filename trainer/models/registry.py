"""Projector kinds -> their builders in `trainer.models.projectors` (the one list of kinds).

A `Registry` of `"module:function"` strings, so `trainer.config` and `trainer.analysis.config` check
`model.projector.kind` (and a projector row's `kind`) when a manifest loads without importing torch;
`build_projector` builds through it. Every builder is `(vision_dim, llm_dim, **options) -> nn.Module`.
"""

from __future__ import annotations

from pad_pipeline.core.registry import Registry

PROJECTORS = Registry("projector", {
    "linear": "trainer.models.projectors:linear_projector",
    "mlp2x_gelu": "trainer.models.projectors:mlp2x_gelu_projector",
    "c_abstractor": "trainer.models.projectors:c_abstractor_projector",
})
