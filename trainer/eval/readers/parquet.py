"""lmms-lab's RefCOCO / RefCOCO+ / RefCOCOg parquet splits -> one `RecItem` per referring sentence.

The files (``data/{split}-0000i-of-0000n.parquet`` of lmms-lab/RefCOCO, RefCOCOplus and RefCOCOg; lmms-eval
0.7.3's ``refcoco*_bbox_rec`` tasks load lmms-lab-encoder's copies of them) hold one row per object:
``question_id`` (string), ``image`` (the datasets `Image` feature: a struct of encoded ``bytes`` and ``path``),
``answer`` (list of the object's referring sentences), ``bbox`` (COCO ``[x, y, w, h]`` in pixels of that image),
plus ``question``, ``segmentation``, ``iscrowd`` and ``file_name``, unused here. As lmms-eval does, each
sentence of ``answer`` is one item, in file order then row order then sentence order; `sample_id` is
``{question_id}_{k}``, k the sentence's index; the image's size is read from its header (lmms-eval normalises
its ground truth by that size).

`path` is a file or a folder: a folder's ``{split}-*.parquet`` files when `split` is given, else all its
``*.parquet`` files, which must then share one split prefix. `check_parquet` reads only the small columns and
counts the items, so it is the cheap step to run before any model loads; `read_parquet` yields items with the
encoded image bytes one batch at a time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pad_pipeline.core.errors import PadError
from trainer.eval.boxes import xywh_to_xyxy
from trainer.eval.items import RecItem

COLUMNS = ("question_id", "image", "answer", "bbox")
BATCH_ROWS = 64


def parquet_files(path: str | Path, split: str | None = None, field: str = "rec") -> list[Path]:
    """The parquet files `path` names (itself, or a folder's files of `split`), in name order."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise PadError(f"{field}.path: {p} is neither a parquet file nor a folder: give lmms-lab's RefCOCO* "
                       "parquet file or its data/ folder")
    files = sorted(p.glob(f"{split}-*.parquet" if split else "*.parquet"))
    if not files:
        raise PadError(f"{field}.path: {p} holds no {f'{split}-*' if split else '*'}.parquet file: give the folder of "
                       "lmms-lab's RefCOCO* parquet files" + (" or another split" if split else ""))
    prefixes = sorted({f.name.split("-")[0] for f in files})
    if not split and len(prefixes) > 1:
        raise PadError(f"{field}.split: {p} holds the parquet files of several splits ({', '.join(prefixes)}): "
                       "name one")
    return files


def _check_schema(schema: pa.Schema, file: Path, field: str) -> None:
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise PadError(f"{field}.path: {file} lacks the column(s) {', '.join(missing)}: give lmms-lab's RefCOCO* "
                       "parquet files (question_id, image, answer, bbox)")
    image = schema.field("image").type
    if not (pa.types.is_binary(image) or pa.types.is_large_binary(image)
            or (pa.types.is_struct(image) and image.get_field_index("bytes") >= 0)):
        raise PadError(f"{field}.path: {file} column image is {image}, not encoded image bytes: give lmms-lab's "
                       "RefCOCO* parquet files")


def _box(bbox: Any, qid: str, file: Path, field: str) -> tuple[float, float, float, float]:
    if bbox is None or len(bbox) != 4:
        raise PadError(f"{field}.path: {file} question_id {qid} has bbox {bbox}, not [x, y, w, h]")
    x, y, w, h = (float(v) for v in bbox)
    return xywh_to_xyxy((x, y, w, h))


def _rows(files: list[Path], columns: tuple[str, ...], field: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    for file in files:
        try:
            reader = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as e:
            raise PadError(f"{field}.path: {file} is not a readable parquet file ({e}): download it again") from None
        _check_schema(reader.schema_arrow, file, field)
        for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
            for row in batch.to_pylist():
                yield file, row


def check_parquet(path: str | Path, split: str | None = None, limit: int | None = None, field: str = "rec") -> int:
    """The number of items `read_parquet` will yield, found without reading any image; PadError when none."""
    files = parquet_files(path, split, field)
    count = 0
    for file, row in _rows(files, ("question_id", "answer", "bbox"), field):
        _box(row["bbox"], str(row["question_id"]), file, field)
        count += len(row["answer"] or ())
        if limit is not None and count >= limit:
            return limit
    if count == 0:
        raise PadError(f"{field}.path: {', '.join(map(str, files))} hold no referring sentence: give a non-empty "
                       "split")
    return count


def _encoded(image: Any, qid: str, file: Path, field: str) -> bytes:
    data = image.get("bytes") if isinstance(image, dict) else image
    if not isinstance(data, bytes) or not data:
        raise PadError(f"{field}.path: {file} question_id {qid} has no encoded image bytes: give lmms-lab's files, "
                       "which embed their images")
    return data


def _size(data: bytes, qid: str, file: Path, field: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            return im.size
    except (OSError, Image.DecompressionBombError) as e:
        raise PadError(f"{field}.path: {file} question_id {qid}: the image does not open ({e})") from None


def read_parquet(path: str | Path, split: str | None = None, limit: int | None = None,
                 field: str = "rec") -> Iterator[RecItem]:
    """The REC items of lmms-lab parquet `path` (the first `limit`), each with its encoded image."""
    files = parquet_files(path, split, field)
    count = 0
    for file, row in _rows(files, COLUMNS, field):
        if limit is not None and count >= limit:
            return
        qid = str(row["question_id"])
        box = _box(row["bbox"], qid, file, field)
        answers = row["answer"] or []
        if not answers:
            continue
        data = _encoded(row["image"], qid, file, field)
        width, height = _size(data, qid, file, field)
        for k, sentence in enumerate(answers):
            if limit is not None and count >= limit:
                return
            yield RecItem(f"{qid}_{k}", data, str(sentence), box, width, height)
            count += 1
