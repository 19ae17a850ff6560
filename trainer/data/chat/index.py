"""A one-time index of a conversation JSON (the ~1 GB `llava_v1_5_mix665k.json`), so no worker holds the file.

`build_index(json_url, image_folder, out_path, control)` streams the top-level JSON array once (C-speed
`raw_decode` over latin-1 text, whose character offsets are byte offsets), checks every entry
(`trainer.data.chat.conversations.parse_entry`, plus that its image file exists) and writes a parquet table beside
the run: per entry its byte `offset` and `length`, `has_image`, LLaVA's `modality_length`, and `reason`
(null for a good entry). The file's fingerprint (size + head/tail hash) is stored with it, and a reused index
must match the JSON it was built from. With a `token_check` the index also holds what only tokenising
finds (`tokenization_mismatch`, `image_truncated`, `no_target`), so training knows every bad entry up front.
`ConversationIndex` (numpy columns) is what loaders keep: workers read an entry by seeking to its offset.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from trainer.data.chat.conversations import BadSample, Conversation, modality_length, parse_entry
from trainer.run_layout import RunLayout

_CHUNK = 16 << 20
_MAX_ENTRY = 64 << 20   # an entry longer than this is taken as malformed
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


def fingerprint(url: str) -> str:
    """size + sha256 of the first and last MiB: cheap, and changes when the file does."""
    fs, path = storage.filesystem(url)
    size = fs.size(path)
    digest = hashlib.sha256(str(size).encode())
    with fs.open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return f"{size}:{digest.hexdigest()[:16]}"


class _Reader:
    """A latin-1 window over a binary file: `buf[i]` is the byte at `base + i`."""

    def __init__(self, handle, chunk: int):
        self.handle, self.chunk = handle, chunk
        self.buf, self.base, self.eof = "", 0, False

    def refill(self, i: int) -> int:
        """Drop what precedes `i`, read one more chunk; returns the new index of `i`."""
        more = self.handle.read(self.chunk).decode("latin-1")
        self.eof = not more
        self.buf, self.base = self.buf[i:] + more, self.base + i
        return 0

    def skip(self, i: int) -> int:
        while True:
            while i < len(self.buf) and self.buf[i] in _WS:
                i += 1
            if i < len(self.buf) or self.eof:
                return i
            i = self.refill(i)


def _value_at(url: str, r: _Reader, i: int) -> tuple[object, int, int]:
    """(value, start, end) of the JSON value at index `i` of the window, reading more as needed."""
    while True:
        try:
            value, end = _DECODER.raw_decode(r.buf, i)
            return value, i, end
        except json.JSONDecodeError as e:
            if r.eof or len(r.buf) - i > _MAX_ENTRY:
                raise PadError(f"{url}: malformed JSON at byte {r.base + e.pos} ({e.msg})") from None
            i = r.refill(i)


def _utf8_value(url: str, text: str, offset: int) -> object:
    """The JSON value of `text` (bytes read as latin-1) decoded as UTF-8; a one-line error when it is not."""
    try:
        return json.loads(text.encode("latin-1").decode("utf-8"))
    except UnicodeDecodeError as e:
        raise PadError(f"{url}: not UTF-8 at byte {offset + e.start} ({e.object[e.start]:#04x}); JSON must be "
                       "UTF-8: re-save the file as UTF-8") from None


def iter_json_array(url: str, chunk: int = _CHUNK) -> Iterator[tuple[int, int, object]]:
    """(byte offset, byte length, parsed value) of each element of the top-level JSON array at `url`."""
    fs, path = storage.filesystem(url)
    with fs.open(path, "rb") as f:
        r = _Reader(f, chunk)
        i = r.skip(r.refill(0))
        if r.buf[i:i + 1] != "[":
            raise PadError(f"{url}: not a JSON array of conversations (starts with {r.buf[i:i + 20]!r})")
        i = r.skip(i + 1)
        if r.buf[i:i + 1] == "]":
            return
        while True:
            value, start, end = _value_at(url, r, i)
            text = r.buf[start:end]
            if not text.isascii():  # latin-1 read UTF-8 bytes as single characters: parse the real text
                value = _utf8_value(url, text, r.base + start)
            yield r.base + start, end - start, value
            i = r.skip(end)
            c = r.buf[i:i + 1]
            if c == "]":
                return
            if c != ",":
                raise PadError(f"{url}: malformed JSON array at byte {r.base + i} (expected ',' or ']', "
                               f"got {r.buf[i:i + 20]!r})")
            i = r.skip(i + 1)


@dataclass
class IndexSummary:
    path: str
    entries: int
    bad: list[BadSample]
    seconds: float


def check_entry(entry: object, index: int, image_folder: str, control: tuple[str, ...],
                check_images: bool) -> Conversation | BadSample:
    """`parse_entry`, then (when `check_images`) that the image file exists."""
    parsed = parse_entry(entry, index, control)
    if isinstance(parsed, Conversation) and parsed.image and check_images:
        if not storage.exists(storage.join(image_folder, parsed.image)):
            return BadSample(parsed.id, "missing_image", f"{parsed.image} not under {image_folder}")
    return parsed


TokenCheck = Callable[[list[tuple[int, Conversation]]], list[tuple[int, BadSample]]]


def scan_entries(json_url: str, image_folder: str, control: tuple[str, ...] = (), check_images: bool = True,
                 token_check: TokenCheck | None = None, batch: int = 512
                 ) -> Iterator[tuple[int, int, int, Conversation | BadSample]]:
    """(index, byte offset, byte length, checked entry) of every entry, in file order; `token_check` (see
    `trainer.data.chat.check.TokenChecker`) tokenises the good entries in batches and names the ones training
    would refuse."""
    pending: list[tuple[int, int, int, Conversation | BadSample]] = []

    def flush() -> Iterator[tuple[int, int, int, Conversation | BadSample]]:
        good = [(i, c) for i, _, _, c in pending if isinstance(c, Conversation)]
        bad = dict(token_check(good)) if token_check is not None and good else {}
        for i, offset, length, c in pending:
            yield i, offset, length, bad.get(i, c)
        pending.clear()

    for index, (offset, length, entry) in enumerate(iter_json_array(json_url)):
        pending.append((index, offset, length, check_entry(entry, index, image_folder, control, check_images)))
        if len(pending) >= batch:
            yield from flush()
    yield from flush()


def build_index(json_url: str, image_folder: str, out_path: str, control: tuple[str, ...] = (),
                check_images: bool = True, token_check: TokenCheck | None = None,
                checks: dict | None = None) -> IndexSummary:
    """Scan `json_url` once and write the index parquet at `out_path` (via a temporary name); `checks` (the
    settings the verdicts depend on: template, max_length, ...) is stored for `index_matches`."""
    start = time.perf_counter()
    cols: dict[str, list] = {"offset": [], "length": [], "has_image": [], "modality_length": [], "reason": []}
    bad: list[BadSample] = []
    for _, offset, length, parsed in scan_entries(json_url, image_folder, control, check_images, token_check):
        cols["offset"].append(offset)
        cols["length"].append(length)
        if isinstance(parsed, Conversation):
            cols["has_image"].append(bool(parsed.image))
            cols["modality_length"].append(modality_length(parsed))
            cols["reason"].append(None)
        else:
            cols["has_image"].append(False)
            cols["modality_length"].append(0)
            cols["reason"].append(parsed.reason)
            bad.append(parsed)
    if not cols["offset"]:
        raise PadError(f"{json_url}: the conversation list is empty")
    table = pa.table({"offset": pa.array(cols["offset"], pa.int64()), "length": pa.array(cols["length"], pa.int64()),
                      "has_image": pa.array(cols["has_image"]),
                      "modality_length": pa.array(cols["modality_length"], pa.int64()),
                      "reason": pa.array(cols["reason"], pa.string())})
    meta = {"source": json_url, "fingerprint": fingerprint(json_url), "image_folder": image_folder,
            "checks": checks or {}}
    table = table.replace_schema_metadata({"pad_index": json.dumps(meta)})
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    pq.write_table(table, out_path + ".tmp")
    os.replace(out_path + ".tmp", out_path)
    return IndexSummary(out_path, len(cols["offset"]), bad, time.perf_counter() - start)


@dataclass
class ConversationIndex:
    """The index columns a loader keeps (a few bytes per entry)."""

    offset: np.ndarray
    length: np.ndarray
    has_image: np.ndarray
    modality_length: np.ndarray
    valid: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return len(self.offset)


def load_index(path: str) -> ConversationIndex:
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"pad_index", b"{}"))
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in
           ("offset", "length", "has_image", "modality_length")}
    valid = np.asarray(table.column("reason").is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return ConversationIndex(col["offset"], col["length"], col["has_image"].astype(bool), col["modality_length"],
                             valid, meta)


def index_matches(path: str, json_url: str, checks: dict | None = None) -> bool:
    """Whether the index at `path` was built from the current contents of `json_url` (and, when given, with
    the same `checks` settings)."""
    if not os.path.isfile(path):
        return False
    meta = json.loads((pq.read_schema(path).metadata or {}).get(b"pad_index", b"{}"))
    same_checks = checks is None or meta.get("checks") == checks
    return same_checks and meta.get("fingerprint") == fingerprint(json_url)


def read_entry(handle, index: ConversationIndex, i: int) -> object:
    """Entry `i`, read from an open binary file handle of the JSON."""
    handle.seek(int(index.offset[i]))
    return json.loads(handle.read(int(index.length[i])).decode("utf-8"))


def index_path(output_dir: str) -> str:
    """The run's index of its conversation JSON."""
    return RunLayout(output_dir).data_index
