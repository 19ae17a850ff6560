"""`TokenGrid`: the trainer's token grid of a `pad pretrain` manifest, as `pad show --grid` draws it."""

from pad_pipeline.dataset.synthetic import random_field_sample
from trainer.data.patches.grid import token_grid_from_manifest


def test_token_grid_from_a_pretrain_manifest(tmp_path):
    demo = token_grid_from_manifest("manifests/pretrain-demo.yaml")
    assert (demo.grid, demo.spec.crop, demo.spec.aspect) == (8, 112, "crop")
    abstractor = token_grid_from_manifest("manifests/pretrain-demo.yaml", [
        "model.projector.kind=c_abstractor", "model.projector.num_tokens=16", "data.image_aspect=pad",
        "data.max_regions=1"])
    assert (abstractor.grid, abstractor.spec.aspect, abstractor.max_regions) == (4, "pad", 1)
    record = random_field_sample(0, seed=0, min_side=120, max_side=140).record
    tokens = abstractor.label_tokens(record)
    assert tokens.shape == (2, 16) and tokens[0].any() and not tokens[1].any()  # the trainer drops label 1
