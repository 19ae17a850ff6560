"""Run lmms-eval's `llava_hf` model on a PAD transformers export (`RUN/export-hf`) and collect its scores.

`run_lmms_eval(LmmsRequest(...))` runs `python -m lmms_eval` (this interpreter) in a child process,
streams its log and progress bars to stderr, then reads the results JSON and per-sample JSONL it wrote
(`trainer.eval.lmms_results`). What lmms-eval 0.7.3 needs, found by running it on PAD's tiny export:
- `llava_hf` resolves to its chat variant (`models/chat/llava_hf.py`): the prompt is built from the
  task's messages (image first, then text) by the processor's own chat template, so the export must carry
  one (PAD writes the run's template); its `chat_template` model argument is ignored there;
- its `device_map` defaults to `""`, which transformers refuses (lmms-eval issue #438): PAD always passes
  one, `device_map=cpu` or `device_map=cuda:N`, with the same `device`;
- it asserts a batch size of 1 (the bridge refuses others before starting), and loads in `dtype`
  (`auto`: the export's own);
- it catches errors: a missing task, data file or model, or any exception in a task, is logged and the
  process still exits 0; a failed `generate` becomes an empty answer scored as a miss. So the bridge
  checks the exit code, that every requested task has a numeric score and a samples file, and that a
  task's answers are not all empty; each failure is a one-line `PadError` naming the task.
It also imports `filelock._api` (gone in filelock 4) and `decord` without declaring it: PAD's `eval`
extra pins `filelock<4` and adds `decord`.

About `refcoco_bbox_rec` (lmms-eval's RefCOCO REC task, `tasks/refcoco/utils_rec.py`), whose figures PAD
sets beside its own: its ground truth is the COCO `[x, y, w, h]` box normalised by the ORIGINAL image
size (`x / width`, `y / height`, `(x + w) / width`, `(y + h) / height`), not by the padded square that
`image_aspect: pad` shows the model; it explodes each row into one document per expression; its prompt is
two sentences followed by LLaVA-1.5's REC instruction: "Bounding box coordinates are specified in the
format (top-left x, top-left y, bottom-right x, bottom-right y). All values are floating point numbers
bounded between 0 and 1. Please provide the bounding box coordinate of the region this sentence
describes: <expression>"; it scores only the first bracketed `[a, b, c, d]` of unsigned-or-negative
decimals (no `+`, no `.5` without a leading digit, no check of range or order), an unparseable answer
becoming `[0, 0, 0, 0]` (IoU 0), and reports IoU, Acc@0.1/0.3/0.5/0.7/0.9 and Center_ACC.
PAD's local REC task for it (`trainer.eval.lmms_task`) uses LLaVA-1.5's prompt alone and PAD's parser.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from pad_pipeline.core.errors import PadError
from trainer.eval.lmms_results import LmmsResults, answer_text, read_results, read_samples

_GENERATE_ERROR = re.compile(rb"Error .* in generating")
_LOG_TAIL = 4000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class LmmsRequest:
    """One lmms-eval run of `llava_hf` on a transformers Llava folder.

    `device`: auto, cpu, cuda or cuda:N (one process, one device); `dtype`: llava_hf's, where `auto` is the
    export's own dtype; `tasks`: lmms-eval task or group names; `include_path`: ONE folder of extra task
    YAMLs (lmms-eval 0.7.3 takes a single path; it searches it recursively); `extra_env`: added to the
    child's environment (e.g. `HF_HUB_OFFLINE=1`).
    """

    export: str
    tasks: list[str]
    output_path: str
    device: str = "cpu"
    dtype: str = "auto"
    limit: int | None = None
    batch_size: int = 1
    include_path: str | None = None
    attn_implementation: str | None = None
    seed: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


def _has_chat_template(export: str) -> bool:
    names = set(os.listdir(export))
    if names & {"chat_template.json", "chat_template.jinja"}:
        return True
    for name in ("processor_config.json", "tokenizer_config.json"):
        if name in names:
            with open(os.path.join(export, name), encoding="utf-8") as f:
                if "chat_template" in f.read():
                    return True
    return False


def check_export(export: str) -> None:
    """One-line errors for a folder lmms-eval's `llava_hf` cannot load, before any process starts."""
    if not os.path.isfile(os.path.join(export, "config.json")):
        raise PadError(f"{export}: no config.json; give a transformers Llava folder (RUN/export-hf, `pad export "
                       f"RUN --format hf`)")
    if not _has_chat_template(export):
        raise PadError(f"{export}: the processor has no chat template, which lmms-eval's llava_hf builds every "
                       f"prompt with; export a stage-2 (sft) run")


def resolve_device(device: str) -> str:
    """`auto` -> `cuda:0` when a GPU is visible, else `cpu`; `cuda` -> `cuda:0`; others as given."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda:0" if device == "cuda" else device


def model_args(req: LmmsRequest) -> str:
    """`--model_args` of `llava_hf`: an explicit device map (its default `""` fails, lmms-eval #438)."""
    device = resolve_device(req.device)
    if "," in req.export or "=" in req.export:
        raise PadError(f"{req.export}: lmms-eval splits --model_args on ',' and '='; move the export to a path "
                       f"without them")
    args = [f"pretrained={os.path.abspath(req.export)}", f"device={device}", f"device_map={device}",
            f"dtype={req.dtype}"]  # batch_size goes as --batch_size (given in both, the model gets it twice)
    if req.attn_implementation:
        args.append(f"attn_implementation={req.attn_implementation}")
    return ",".join(args)


def command(req: LmmsRequest) -> list[str]:
    """The `python -m lmms_eval` command line of `req`."""
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "llava_hf", "--model_args", model_args(req),
           "--tasks", ",".join(req.tasks), "--batch_size", str(req.batch_size),
           "--output_path", os.path.abspath(req.output_path), "--log_samples", "--seed", str(req.seed)]
    if req.limit is not None:
        cmd += ["--limit", str(req.limit)]
    if req.include_path is not None:
        cmd += ["--include_path", os.path.abspath(req.include_path)]
    return cmd


def _stream(cmd: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """Run `cmd`, copying its stdout and stderr to our stderr as they come; (exit code, generate errors,
    the log's tail)."""
    errors, tail, pending = 0, b"", b""
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()[-_LOG_TAIL:]
            errors += sum(1 for line in lines if _GENERATE_ERROR.search(line))
            tail = (tail + chunk)[-_LOG_TAIL:]
        code = proc.wait()
    errors += 1 if _GENERATE_ERROR.search(pending) else 0
    return code, errors, tail.decode("utf-8", "replace")


def last_error(log: str) -> str:
    """The last `ERROR` line of lmms-eval's log (colours removed, loguru's prefix cut), or ''."""
    lines = [_ANSI.sub("", line) for line in log.splitlines()]
    errors = [line.split(" - ", 1)[-1].strip() for line in lines if "| ERROR" in line]
    return errors[-1][:300] if errors else ""


def run_lmms_eval(req: LmmsRequest) -> LmmsResults:
    """Run lmms-eval on `req.export` and return every requested task's scores and samples file.

    Raises PadError before starting for an unusable export or batch size, and after the run when
    lmms-eval failed, a task has no score or predictions, or every answer of a task is empty.
    """
    if not req.tasks:
        raise PadError("lmms-eval: no tasks given")
    if req.batch_size != 1:
        raise PadError(f"lmms-eval batch_size {req.batch_size}: lmms-eval 0.7.3's llava_hf answers one sample "
                       f"at a time (it asserts batch size 1); set 1")
    check_export(req.export)
    os.makedirs(req.output_path, exist_ok=True)
    env = {**os.environ, **req.extra_env}
    started = time.time() - 1.0  # file times may be coarser than the clock
    cmd = command(req)
    print(f"lmms-eval: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    code, gen_errors, tail = _stream(cmd, env)
    if code != 0:
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        raise PadError(f"lmms-eval exited {code} on tasks {','.join(req.tasks)}: {last}")
    error = last_error(tail)
    results = read_results(req.output_path, req.tasks, since=started,
                           log_hint=f"lmms-eval said: {error}" if error else "")
    for task in results.tasks:
        answers = [answer_text(s) for s in read_samples(results.tasks[task].samples)]
        if answers and not any(a.strip() for a in answers):
            raise PadError(f"lmms-eval task {task}: llava_hf returned no text for any of its {len(answers)} "
                           f"samples ({gen_errors} 'Error ... in generating' lines in its log above)")
    return results
