"""Referring expressions name exactly one shape: checked by an independent reader of the expressions."""

import numpy as np
import pytest

from pad_pipeline.dataset.shapes import COLORS, SHAPES, SyntheticShapesConfig, make_scene
from trainer.eval.miniature.expressions import SceneShape, mask_box, referring_expressions, scene_shapes

SIZE = 112


def _resolve(expression: str, shapes: list[SceneShape]) -> list[int]:
    """The shapes an expression can mean, read word by word (a superlative must be clear: ratio 1.5 in area,
    0.2 of the image in centre position, as a person would need to tell without measuring)."""
    words = expression.split()
    assert words[0] == "the"
    cands = [i for i, s in enumerate(shapes)
             if all(w not in COLORS or w == s.color for w in words) and all(w not in SHAPES or w == s.kind
                                                                            for w in words)]
    rest = " ".join(w for w in words[1:] if w not in COLORS and w not in SHAPES and w != "shape")
    if not rest:
        return cands
    if len(cands) < 2:
        return []  # a superlative over fewer than two shapes names nothing
    if rest in ("small", "large"):
        key = [float(shapes[i].area) * (1 if rest == "small" else -1) for i in cands]
        ranked = sorted(range(len(cands)), key=key.__getitem__)
        a, b = abs(key[ranked[0]]), abs(key[ranked[1]])
        return [cands[ranked[0]]] if max(a, b) / min(a, b) >= 1.5 else cands
    axis, sign = {"on the left": (0, 1), "on the right": (0, -1), "at the top": (1, 1), "at the bottom": (1, -1)}[rest]
    key = [shapes[i].centre[axis] * sign for i in cands]
    ranked = sorted(range(len(cands)), key=key.__getitem__)
    return [cands[ranked[0]]] if key[ranked[1]] - key[ranked[0]] >= 0.2 * SIZE else cands


def _shape(color, kind, x0, y0, side, area=None):
    return SceneShape(color, kind, (x0, y0, x0 + side, y0 + side), area or side * side)


def test_every_expression_of_many_scenes_names_exactly_its_shape():
    cfg = SyntheticShapesConfig(out="unused", num_scenes=1, max_shapes=3)
    kinds = set()
    for i in range(400):
        scene = make_scene(np.random.default_rng([5, i]), cfg)
        shapes = scene_shapes(scene.tags, scene.masks)
        for target, expression in referring_expressions(shapes, SIZE):
            assert _resolve(expression, shapes) == [target], (expression, shapes)
            kinds.add(" ".join(w for w in expression.split() if w not in COLORS and w not in SHAPES))
    # every family of expression occurs: attributes, "the X shape", sizes and positions
    assert {"the", "the shape", "the small shape", "the large shape", "the shape on the left",
            "the shape at the bottom"} <= kinds, kinds


def test_two_circles_are_told_apart_by_position_and_size_but_not_when_unclear():
    shapes = [_shape("red", "circle", 0, 40, 40), _shape("blue", "circle", 70, 40, 20),
              _shape("red", "square", 30, 0, 30)]
    got = dict((e, i) for i, e in referring_expressions(shapes, SIZE))
    assert got["the circle on the left"] == 0 and got["the circle on the right"] == 1
    assert got["the large circle"] == 0 and got["the small circle"] == 1 and got["the square"] == 2
    assert got["the blue shape"] == 1 and "the red shape" not in got  # two red shapes
    assert got["the red square"] == 2 and "the circle" not in got
    close = [_shape("red", "circle", 0, 40, 30), _shape("blue", "circle", 15, 40, 30)]  # 15 px apart, same size
    names = [e for _, e in referring_expressions(close, SIZE)]
    assert not any("left" in e or "right" in e or "small" in e or "large" in e for e in names), names


def test_a_lone_shape_has_one_expression_naming_colour_and_kind():
    assert referring_expressions([_shape("green", "triangle", 10, 10, 30)], SIZE) == [(0, "the green triangle")]


def test_mask_box_is_the_tight_box_with_exclusive_edges():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == (3.0, 2.0, 9.0, 5.0)
    with pytest.raises(ValueError):
        mask_box(np.zeros((4, 4), dtype=bool))
