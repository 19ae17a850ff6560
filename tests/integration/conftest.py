"""Integration fixtures: a real local Ray instance per test module (modules need different clusters)."""

import pytest


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()
