"""`pad eval` on several GPUs: a real local Ray told of 2 GPUs; each actor answers a share, joined in order."""

import io

import numpy as np
import pytest
from PIL import Image

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM
from trainer.config.sections import LlmConfig, ModelConfig, VisionConfig
from trainer.eval.answerer import LocalAnswerer, SubjectRef
from trainer.eval.answering import answerer_for
from trainer.eval.config import GenerationConfig, ModelSpec
from trainer.eval.distributed import RayAnswerer, shares
from trainer.eval.generate import Query

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_with_two_gpus():
    import ray

    ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _queries(n: int) -> list[Query]:
    out = []
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, size=(30 + i, 40, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        out.append(Query(buf.getvalue(), None))
    return out


def test_shares_cover_every_query_once():
    assert shares(5, 2) == [(0, 3), (3, 5)]
    assert shares(1, 3) == [(0, 1), (1, 1), (1, 1)]


def test_two_gpu_actors_answer_as_one_process(ray_with_two_gpus):
    model = ModelConfig(vision=VisionConfig(checkpoint=TINY_RANDOM), llm=LlmConfig(checkpoint=TINY_RANDOM))
    ref = SubjectRef("random", 1, ModelSpec(stage1="random", model=model, seed=3))
    queries = _queries(5)
    one = LocalAnswerer(ref, GenerationConfig(batch_size=2, num_workers=0))
    expected = one.answers(queries, max_new_tokens=5)
    one.close()
    two = answerer_for(ref, GenerationConfig(batch_size=2, num_workers=0, gpus=2, cpus_per_gpu=0.5))
    assert isinstance(two, RayAnswerer) and len(two.actors) == 2
    seen: list[int] = []
    try:
        assert two.answers(queries, max_new_tokens=5, progress=seen.append) == expected
    finally:
        two.close()
    assert seen[-1] == 5


def test_more_gpus_than_the_cluster_has_is_a_named_error(ray_with_two_gpus):
    ref = SubjectRef("m", 1, ModelSpec(stage1="random", model=ModelConfig()))
    with pytest.raises(PadError, match="generation.gpus': 3 asked for, the Ray cluster has 2"):
        RayAnswerer(ref, GenerationConfig(gpus=3))
