#!/usr/bin/env bash
# The wheels bench/gpu.py needs on a bare GPU image (CPython 3.12, x86-64 Linux, no package index there):
# pydantic (PAD's config classes) with its dependencies, pycocotools (PAD's RLE codec), and PAD's training
# engine: DeepSpeed as a pure-Python wheel built with DS_BUILD_OPS=0 (its ops JIT-build on the GPU machine when
# asked for, e.g. the fused Adam) plus hjson and the small pure-Python packages DeepSpeed imports. Run it where
# pip reaches PyPI; it fills .whl/ (ignored by git, a few MiB), which travels with the repository to the GPU
# machine. bench/gpu.py unpacks them onto sys.path by itself when those modules are missing there.
# The versions are the ones PAD is tested with (keep them in step with the venv: `pip list`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3)}
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl \
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing-extensions==4.16.0 pycocotools==2.0.11 \
    hjson==3.1.0 py-cpuinfo==9.0.0 einops==0.8.2 msgpack==1.2.4
# DeepSpeed ships an sdist only; DS_BUILD_OPS=0 builds no CUDA op ahead of time, so the wheel is pure Python.
DS_BUILD_OPS=0 "$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl deepspeed==0.19.8
ls -l .whl/*.whl
du -sh .whl
