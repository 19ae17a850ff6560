"""Older transformers stacks beside the project's, for the tests that load PAD's exports as their users do.

`side_stack(name)` installs the pinned packages of a stack with `pip install --no-deps --target DIR` (torch,
numpy, safetensors and the rest come from the project's environment: no torch reinstall) into a folder keyed
by the pins, once: under `$PAD_SIDE_STACKS`, else beside the virtual environment (`sys.prefix`), so CI and
reruns reuse it. `run_in_stack(name, script, *args)` runs a script with that folder first on `PYTHONPATH`,
offline, and returns its stdout; a failure is an assertion with the script's output.
"""

import hashlib
import os
import shutil
import subprocess
import sys

# transformers 4.49.0: the oldest 4.x with LlavaImageProcessor (pad-to-square) beside a LlavaProcessor that
# takes num_additional_image_tokens; its pinned tokenizers is 0.21.
# LLaVA (haotian-liu/LLaVA, pyproject.toml): transformers 4.37.2, tokenizers 0.15.1, sentencepiece 0.1.99,
# accelerate 0.21.0 (its builder loads with low_cpu_mem_usage=True, which needs accelerate).
STACKS = {
    "transformers4": ("transformers==4.49.0", "tokenizers==0.21.0", "huggingface_hub==0.26.5"),
    "llava": ("transformers==4.37.2", "tokenizers==0.15.1", "huggingface_hub==0.20.3", "sentencepiece==0.1.99",
              "accelerate==0.21.0"),
}
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration", "old_stacks")


def _root() -> str:
    return os.environ.get("PAD_SIDE_STACKS") or os.path.join(sys.prefix, "pad-side-stacks")


def side_stack(name: str) -> str:
    """The folder holding stack `name` (installed on first use; a failed install leaves nothing behind)."""
    pins = STACKS[name]
    key = hashlib.sha256(" ".join((sys.version.split()[0], *pins)).encode()).hexdigest()[:12]
    folder = os.path.join(_root(), f"{name}-{key}")
    if os.path.isfile(os.path.join(folder, ".complete")):
        return folder
    partial = folder + f".partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                           "--disable-pip-version-check", "--target", partial, *pins],
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0, f"installing the {name} stack ({' '.join(pins)}) failed:\n{proc.stdout[-2000:]}"
    open(os.path.join(partial, ".complete"), "w").close()
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def run_in_stack(name: str, script: str, *args: str) -> str:
    """Run `old_stacks/<script>` with stack `name` first on PYTHONPATH (offline); its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=side_stack(name), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert proc.returncode == 0, f"{script} in the {name} stack failed:\n{proc.stderr[-4000:]}"
    return proc.stdout
