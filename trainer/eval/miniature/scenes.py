"""The scenes of a synthetic shapes build read back as REC samples: image, shapes, chosen expressions.

`rec_scenes(cfg, expressions_per_image)` regenerates scene i of a `SyntheticShapesConfig` exactly as
`pad_pipeline.dataset.shapes.build_synthetic` draws it (rng(seed, i)), so the REC files describe the very
images the stage-1 build holds. Expressions are drawn per scene from rng(seed, i, EXPRESSION_STREAM)
(distinct expressions, in random order), so a scene's choice does not depend on the scene count.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pad_pipeline.dataset.shapes import Scene, SyntheticShapesConfig, make_scene
from trainer.eval.miniature.expressions import SceneShape, referring_expressions, scene_shapes

EXPRESSION_STREAM = 7  # a third rng key: the scene's own draws (rng(seed, i)) stay as the build's


@dataclass(frozen=True)
class RecScene:
    index: int                      # scene index in its build (image ids derive from it)
    scene: Scene
    shapes: list[SceneShape]
    expressions: list[tuple[int, str]]  # (shape index, expression), chosen for this scene

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.scene.image.shape[:2]
        return w, h

    def jpeg(self, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(self.scene.image).save(buf, format="JPEG", quality=quality)
        return buf.getvalue()


def rec_scene(cfg: SyntheticShapesConfig, index: int, expressions_per_image: int) -> RecScene:
    scene = make_scene(np.random.default_rng([cfg.seed, index]), cfg)
    shapes = scene_shapes(scene.tags, scene.masks)
    every = referring_expressions(shapes, cfg.image_size)
    rng = np.random.default_rng([cfg.seed, index, EXPRESSION_STREAM])
    chosen = [every[int(j)] for j in rng.permutation(len(every))[:expressions_per_image]]
    return RecScene(index, scene, shapes, chosen)


def rec_scenes(cfg: SyntheticShapesConfig, expressions_per_image: int) -> list[RecScene]:
    """Every scene of the build with at least one shape (a bare background has nothing to refer to)."""
    scenes = (rec_scene(cfg, i, expressions_per_image) for i in range(cfg.num_scenes))
    return [s for s in scenes if s.shapes]
