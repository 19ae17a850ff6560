"""Who answers a model's queries: this process (one device), or one Ray actor per GPU (`generation.gpus > 1`).

A `SubjectRef` names a model to load (stage 1 or stage 2 of a manifest's model) and is cheap to send to a Ray
actor, which loads it there. `LocalAnswerer` loads the model on first use onto `generation.device` and keeps
it for every split of the task; `trainer.eval.distributed.RayAnswerer` does the same in each of its actors
and splits the queries between them; `trainer.eval.hf_answerer.HfAnswerer` answers with a transformers
Llava folder. All return answers in query order, and `close()` frees the model; `trainer.eval.answering`
picks one for a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Protocol, Sequence

import torch

from trainer.eval.config import GenerationConfig, ModelSpec
from trainer.eval.generate import Generator, Query
from trainer.eval.subject import Subject, device_and_dtype, place, stage1_subject, stage2_subject


@dataclass(frozen=True)
class SubjectRef:
    """Stage `stage` of manifest model `name` (loadable anywhere the run folders are readable)."""

    name: str
    stage: Literal[1, 2]
    spec: ModelSpec

    def load(self) -> Subject:
        if self.stage == 1:
            return stage1_subject(self.name, self.spec)
        assert self.spec.stage2 is not None
        return stage2_subject(self.name, self.spec.stage2)


class Answerer(Protocol):
    def answers(self, queries: Sequence[Query], max_new_tokens: int,
                progress: Callable[[int], None] | None = None) -> list[str]: ...

    def close(self) -> None: ...


class LocalAnswerer:
    def __init__(self, ref: SubjectRef, settings: GenerationConfig):
        self.ref, self.settings = ref, settings
        self.subject: Subject | None = None

    def answers(self, queries: Sequence[Query], max_new_tokens: int,
                progress: Callable[[int], None] | None = None) -> list[str]:
        if self.subject is None:
            device, dtype = device_and_dtype(self.settings)
            self.subject = place(self.ref.load(), device, dtype)
        s = self.subject
        generator = Generator(s.model, s.tokenizer, s.template, s.spec, max_new_tokens)
        return generator.answers(queries, self.settings.batch_size, self.settings.num_workers, progress)

    def close(self) -> None:
        self.subject = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
