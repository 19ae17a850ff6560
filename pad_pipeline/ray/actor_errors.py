"""Ray's errors as the one line a user reads: the innermost message, or why and where an actor died.

A task error arrives wrapped (`RayTaskError(cause)`, its text a remote traceback); an actor that died
arrives as `ActorDiedError`, whose text holds the actor's class, pid, node and Ray's exit detail among
paragraphs of advice. These helpers keep what names the problem.
"""

from __future__ import annotations

import re

import ray

from pad_pipeline.core.errors import PadError

_EXIT = re.compile(r"Worker exit type: (\w+)\s+Worker exit detail: (.*?)(?:\s+Some common causes|$)", re.S)
_FIELD = re.compile(r"^\s*(class_name|pid|ip): (\S+)\s*$", re.M)


def first_line(exc: BaseException, limit: int = 400) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def root_message(exc: BaseException) -> str:
    """The innermost error line of a Ray-wrapped exception (a `PadError` cause: its own message)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PadError):
        return first_line(cause)
    if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
        return f"{type(cause).__name__}: {first_line(cause)}"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:400]
    return (lines[-1] if lines else type(exc).__name__)[:400]


def died_actor(exc: BaseException) -> ray.exceptions.ActorDiedError | None:
    """The `ActorDiedError` behind `exc` (itself, or the cause of a task that called the dead actor)."""
    for candidate in (exc, getattr(exc, "cause", None)):
        if isinstance(candidate, ray.exceptions.ActorDiedError):
            return candidate
    return None


def death_parts(exc: BaseException) -> tuple[str, str]:
    """(which actor, why it died) from an `ActorDiedError`: `("AnnotatorWorker pid 8288 on 10.0.0.2",
    "SYSTEM_ERROR: Worker unexpectedly exits ...")`; Ray's first lines when its wording is not recognised."""
    died = died_actor(exc)
    text = str(getattr(died, "error_msg", "") or died or exc)
    fields = dict(_FIELD.findall(text))
    where = " ".join(filter(None, [fields.get("class_name"), f"pid {fields['pid']}" if "pid" in fields else "",
                                   f"on {fields['ip']}" if "ip" in fields else ""]))
    match = _EXIT.search(text)
    if match:
        why = f"{match.group(1)}: {' '.join(match.group(2).split())}"
        if match.group(1) == "SYSTEM_ERROR":
            why += " (the process crashed or was killed, e.g. SIGSEGV or the OOM killer)"
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _FIELD.match(ln)]
        why = " ".join(lines[:2]) or type(exc).__name__
    return where, why[:400]


def death_summary(exc: BaseException) -> str:
    """One line: which actor died and why."""
    where, why = death_parts(exc)
    return f"{where}: {why}" if where else why
