"""Which answerer serves a model: a transformers Llava folder, several GPUs through Ray, or this process."""

from __future__ import annotations

from trainer.eval.answerer import Answerer, LocalAnswerer, SubjectRef
from trainer.eval.config import GenerationConfig
from trainer.eval.hf_answerer import HfAnswerer
from trainer.eval.hf_source import is_hf_llava


def answerer_for(ref: SubjectRef, settings: GenerationConfig) -> Answerer:
    if ref.stage == 2 and ref.spec.stage2 is not None and is_hf_llava(ref.spec.stage2):
        return HfAnswerer(ref.spec.stage2, settings)
    if settings.gpus > 1:
        from trainer.eval.distributed import RayAnswerer  # Ray only where several GPUs are asked for

        return RayAnswerer(ref, settings)
    return LocalAnswerer(ref, settings)
