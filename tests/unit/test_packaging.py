"""How PAD is installed and shipped: version ranges for the wheel, the exact torch pair for our own venv and
CI, one runtime environment for every job under cluster/, and node setup that cannot hide a failed install."""

import configparser
import importlib.metadata
import json
import re
from pathlib import Path

import jsonschema
import ray
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
PAIR = ("torch", "torchvision")
SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)


def _install_requires() -> dict[str, Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    reqs = [Requirement(line) for line in cfg["options"]["install_requires"].strip().splitlines()]
    return {r.name: r for r in reqs}


def _makefile_pins() -> dict[str, str]:
    """The `pip install torch==X torchvision==Y` line of the Makefile's venv recipe."""
    pins: dict[str, str] = {}
    for line in (REPO / "Makefile").read_text().splitlines():
        if "pip install" in line and not line.lstrip().startswith("#"):
            pins.update(re.findall(r"\b(torch|torchvision)==([\w.+]+)", line))
    return pins


def test_setup_cfg_declares_ranges_for_torch_and_torchvision():
    reqs = _install_requires()
    for name in PAIR:
        ops = {spec.operator for spec in reqs[name].specifier}
        assert ops == {">=", "<"}, f"setup.cfg: {name} must be a tested range (>=low,<high), not {reqs[name]}"


def test_the_makefile_installs_the_exact_pair_inside_the_ranges():
    pins, reqs = _makefile_pins(), _install_requires()
    assert set(pins) == set(PAIR), f"the Makefile must install torch==X torchvision==Y first (found {pins})"
    for name in PAIR:
        assert reqs[name].specifier.contains(pins[name]), f"Makefile {name}=={pins[name]} outside {reqs[name]}"
    assert "make test" in (REPO / ".ci" / "run").read_text(), "CI must build its venv through the Makefile"


def test_this_venv_holds_the_makefile_pair():
    pins = _makefile_pins()
    for name in PAIR:
        installed = Version(importlib.metadata.version(name)).base_version
        assert installed == pins[name], f"{name} {installed} installed, the Makefile pins {pins[name]}"


def _runtime_env() -> dict:
    return yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text())


def test_the_runtime_env_is_valid_and_holds_no_secret_or_relative_pip():
    env = _runtime_env()
    ray.runtime_env.RuntimeEnv(**env)  # Ray's own validation of every field
    assert "pip" not in env and "conda" not in env and "uv" not in env, "dependencies come from the nodes"
    assert not [k for k in env.get("env_vars", {}) if SECRET.search(k)], "no secret in the runtime env"
    assert "TOKENIZERS_PARALLELISM" not in env.get("env_vars", {}), "PAD's driver sets it (ray.init would conflict)"


def test_the_runtime_env_uploads_the_code_and_leaves_out_the_heavy_folders():
    from ray._private.runtime_env.packaging import _get_excludes

    excluded = _get_excludes(REPO, _runtime_env()["excludes"])
    needed = [p for folder in ("pad_pipeline", "trainer", "manifests", "cluster") for p in (REPO / folder).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    assert needed and not [p for p in needed if excluded(p)], "a file the jobs need would not be uploaded"
    assert all(excluded(REPO / name) for name in ("data", "checkpoints", "out", "runs", ".venv", ".git"))


def test_every_runtime_env_under_cluster_is_the_tested_one():
    rayjob = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    job_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    assert job_env.pop("working_dir").startswith("https://"), "the RayJob's working_dir is the archive URL"
    assert job_env == _runtime_env(), "cluster/rayjob.yaml's runtimeEnvYAML must be cluster/runtime_env.yaml"
    others = [p.name for p in CLUSTER.rglob("*.y*ml") if p.name not in ("runtime_env.yaml", "rayjob.yaml")
              and re.search(r"runtime_?env", p.read_text(), re.IGNORECASE) and p.name != "ray-cluster.yaml"]
    assert not others, f"{others}: a runtime env outside cluster/runtime_env.yaml is not tested"


def test_the_rayjob_image_is_the_dockerfile_on_the_same_ray():
    spec = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())["spec"]
    base = re.search(r"^FROM (\S+)", (CLUSTER / "Dockerfile").read_text(), re.MULTILINE).group(1)
    ray_version = spec["rayClusterSpec"]["rayVersion"]
    assert base.startswith(f"rayproject/ray:{ray_version}-"), f"Dockerfile base {base} vs rayVersion {ray_version}"
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    workers = [c for g in spec["rayClusterSpec"]["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]]
    assert len({c["image"] for c in head + workers}) == 1, "head and workers must run the same image"
    for copied in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (CLUSTER / "Dockerfile").read_text(), re.MULTILINE):
        assert all((REPO / name).exists() for name in copied.split()), f"Dockerfile copies a missing path: {copied}"


def test_the_autoscaler_config_mounts_and_installs_the_code_without_masking_failures():
    config = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    commands = [c for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                              "worker_setup_commands") for c in config.get(key, [])]
    masked = [c for c in commands if re.search(r"\|\|\s*(true|:)|;\s*true|set \+e", c)]
    assert not masked, f"a failed setup command must fail the node's setup: {masked}"
    mounts = config["file_mounts"]
    code = [remote for remote, local in mounts.items() if Path(REPO, local).resolve() == REPO]
    assert code, "file_mounts must copy this checkout to the nodes"
    assert any("pip install" in c and code[0] in c for c in config["setup_commands"]), \
        f"setup_commands must install PAD from the mounted checkout {code[0]}"
    assert not any(re.search(r"\b(torch|torchvision)==", c) for c in commands), "keep the nodes' own torch"
