"""GPU placement on a CPU machine: Ray is told it has GPUs, and PAD must place one actor per GPU."""

import pytest
from helpers import assert_each_input_once, good_images, write_manifest

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.ray.annotator_actor import create_actors
from pad_pipeline.ray.driver import annotator_count, run_annotate


@pytest.fixture(scope="module")
def ray_with_three_gpus():
    import ray

    ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=3, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_one_actor_per_declared_gpu_each_on_its_own_device(ray_with_three_gpus, tmp_path):
    ray = ray_with_three_gpus
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out",
                              annotators=None, cpus_per_annotator=0.25)
    cfg = load_annotate_config(str(manifest))
    count, use_gpus = annotator_count(cfg)
    assert (count, use_gpus) == (3, True)
    actors = create_actors(cfg, count, use_gpus)
    try:
        placements = ray.get([a.placement.remote() for a in actors])
    finally:
        for a in actors:
            ray.kill(a)
    gpu_ids = [p["gpu_ids"] for p in placements]
    assert all(len(ids) == 1 for ids in gpu_ids)
    assert sorted(ids[0] for ids in gpu_ids) == ["0", "1", "2"]
    assert sorted(p["cuda_visible_devices"] for p in placements) == ["0", "1", "2"]
    assert all(p["device"] == "cpu" for p in placements)  # no CUDA here: the same code falls back


def test_build_with_gpu_actors(ray_with_three_gpus, tmp_path):
    names = good_images(tmp_path / "src", 6, seed=7)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=2,
                              annotators=None, cpus_per_annotator=0.25)
    summary = run_annotate(load_annotate_config(str(manifest)))
    assert summary.ok and len(summary.actor_stats) == 3
    assert sum(s["images"] for s in summary.actor_stats) == 6
    assert_each_input_once(tmp_path / "out", set(names))


def test_one_shard_spreads_its_batches_over_every_actor_of_its_node(ray_with_three_gpus, tmp_path):
    # The last shards of a build must not leave GPUs idle: one shard's batches go round-robin.
    names = good_images(tmp_path / "src", 6, seed=8)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=6,
                              annotators=None, cpus_per_annotator=0.25, batch_size=2)
    summary = run_annotate(load_annotate_config(str(manifest)))
    assert summary.ok and sorted(s["images"] for s in summary.actor_stats) == [2, 2, 2]
    assert_each_input_once(tmp_path / "out", set(names))
