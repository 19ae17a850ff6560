"""The annotation chain's output version: part of a build's config hash, so an old build is not continued.

A change of the chain that gives other bytes for the same manifest (version 2, issue 20: Grounding DINO
runs its (image, prompt chunk) pairs padded to canvas and prompt-length buckets, in batches) must not
be mixed into a build planned by the old chain: its shards would differ from the ones already
committed. The version is folded into `plan.annotation_config_hash`; `refuse_old_chain` recognises a
plan made by version 1 (whose hash had neither the version nor the fields version 2 added) and refuses
to resume it in one line that says what to do.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pad_pipeline.core.errors import PadError

CHAIN_OUTPUT_VERSION = 2
# Fields that version 2 added to the hashed config (left out when recomputing a version-1 hash).
_ADDED_IN_2 = ("models.detector.canvas_multiple", "models.weights_dtype")


def versioned(hash_v1_style: str) -> str:
    """A config hash with the chain's output version folded in (16 hex digits, as config hashes are)."""
    return hashlib.sha256(f"{hash_v1_style}:chain-v{CHAIN_OUTPUT_VERSION}".encode()).hexdigest()[:16]


def version_1_exclude(exclude: dict[str, Any]) -> dict[str, Any]:
    """`exclude` of the config hash (nested dicts of `True`), plus the fields version 1 did not have."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in exclude.items()}
    for dotted in _ADDED_IN_2:
        *parents, leaf = dotted.split(".")
        node = out
        for name in parents:
            node[name] = dict(node.get(name) or {})
            node = node[name]
        node[leaf] = True
    return out


def refuse_old_chain(out: str, planned_hash: str, version_1_hash: str) -> None:
    """A one-line PadError when the build at `out` was planned by chain output version 1."""
    if planned_hash == version_1_hash:
        raise PadError(f"{out}: this build was annotated by an older PAD chain (output version 1); this PAD writes "
                       f"version {CHAIN_OUTPUT_VERSION} (batched detector), whose shards would not match the "
                       "committed ones: annotate into a fresh --out, or rebuild this one from scratch")
