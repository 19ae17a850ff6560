"""Uploading a repository's files to the Hub in bounded commits that a rerun resumes.

Before committing, `upload` lists the repository's tree and skips every file already there with the
same content (its LFS sha256, known for tars from their shard records, or its git blob id for small
files), so a rerun after an interruption never sends a finished file again; content that reached the
Hub inside an interrupted commit is not sent again either (the Hub's LFS batch answer says it has it).
Data goes first, in commits of at most `max_files` files and `max_bytes` bytes (the Hub recommends
fewer than 100 files per commit), and `README.md` last, so the card appears with its data. The
huggingface_hub client reads the token itself (`HF_TOKEN` or the `hf auth login` cache); PAD only
asks whether one exists, and never writes, prints or passes it on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from pad_pipeline.core.errors import PadError
from pad_pipeline.tools.repo_file import RepoFile

CARD = "README.md"


@dataclass(frozen=True)
class RemoteFile:
    size: int
    blob_id: str
    sha256: str | None   # LFS files only


@dataclass
class UploadReport:
    sent: list[str] = field(default_factory=list)      # files committed by this run
    skipped: list[str] = field(default_factory=list)   # already on the Hub with the same content
    commits: int = 0


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (what the Hub reports for files not stored in LFS)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def require_token() -> None:
    from huggingface_hub import get_token

    if not get_token():
        raise PadError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (PAD never stores it)")


def remote_files(api: Any, repo_id: str) -> dict[str, RemoteFile]:
    """path -> what the repository's main branch holds (an empty dict for a new repository)."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile as HubFile

    try:
        tree = list(api.list_repo_tree(repo_id, repo_type="dataset", recursive=True))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return {}
    return {f.path: RemoteFile(f.size, f.blob_id, f.lfs.sha256 if f.lfs else None)
            for f in tree if isinstance(f, HubFile)}


def already_there(f: RepoFile, remote: RemoteFile | None) -> bool:
    if remote is None or remote.size != f.size:
        return False
    if remote.sha256:
        return (f.sha256 or hashlib.sha256(f.read()).hexdigest()) == remote.sha256
    return git_blob_id(f.read()) == remote.blob_id


def commit_batches(files: list[RepoFile], max_files: int, max_bytes: int) -> list[list[RepoFile]]:
    """Consecutive groups of at most `max_files` files and `max_bytes` bytes (a larger file goes alone)."""
    batches: list[list[RepoFile]] = []
    current: list[RepoFile] = []
    size = 0
    for f in files:
        if current and (len(current) >= max_files or size + f.size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    return batches + ([current] if current else [])


def _operation(f: RepoFile) -> Any:
    from huggingface_hub import CommitOperationAdd

    if f.data is None and f.source and "://" not in f.source:
        return CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.source)  # streamed from disk
    return CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.read())


def _validate_card(files: list[RepoFile]) -> None:
    from huggingface_hub import DatasetCard

    card = next((f for f in files if f.path == CARD), None)
    if card is not None:
        try:
            DatasetCard(card.read().decode("utf-8")).validate(repo_type="dataset")
        except ValueError as e:
            raise PadError(f"the Hub refuses the card's metadata ({str(e).strip()[:200]}); check the publish "
                           "section (e.g. publish.license)") from None


def upload(files: list[RepoFile], repo_id: str, private: bool = False, max_files: int = 50,
           max_bytes: int = 2 * 2**30, api: Any = None, log: Callable[[str], None] = print) -> UploadReport:
    """Commit `files` to dataset repo `repo_id`, skipping those already there (see the module docstring)."""
    if api is None:
        from huggingface_hub import HfApi

        require_token()
        api = HfApi()
    report = UploadReport()
    step = "checking the card"
    try:
        _validate_card(files)
        step = "creating the repository"
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        step = "listing the repository"
        remote = remote_files(api, repo_id)
        todo = [f for f in files if not already_there(f, remote.get(f.path))]
        report.skipped = [f.path for f in files if f not in todo]
        batches = commit_batches([f for f in todo if f.path != CARD], max_files, max_bytes)
        batches += [[f for f in todo if f.path == CARD]] if any(f.path == CARD for f in todo) else []
        log(f"pad publish: datasets/{repo_id}: {len(report.skipped)} files already there, {len(todo)} to send "
            f"in {len(batches)} commits")
        for n, batch in enumerate(batches, 1):
            step = f"commit {n}/{len(batches)}"
            nbytes = sum(f.size for f in batch)
            log(f"pad publish: {step}: {len(batch)} files, {nbytes / 2**20:.1f} MiB ({batch[0].path} ...)")
            message = "PAD: dataset card" if batch[0].path == CARD else f"PAD: add {len(batch)} files ({step})"
            api.create_commit(repo_id=repo_id, repo_type="dataset", operations=[_operation(f) for f in batch],
                              commit_message=message)
            report.sent += [f.path for f in batch]
            report.commits += 1
    except PadError:
        raise
    except Exception as e:  # any failure of the network or the Hub: the next run resumes from here
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise PadError(f"upload to datasets/{repo_id} stopped at {step} ({type(e).__name__}: {first}); rerun the "
                       f"same command to resume ({len(report.sent)} files sent now are not sent again)") from None
    log(f"pad publish: datasets/{repo_id}: sent {len(report.sent)} files in {report.commits} commits; "
        f"{len(report.skipped)} were already there")
    return report
