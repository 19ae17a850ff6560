"""The `pad` command: parses arguments, loads the manifest, calls the library.

Every subcommand takes a manifest (YAML path) plus `--set key.sub=value` overrides where it has one,
prints progress on long work, and exits non-zero with a one-line error on bad input (`PadError`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from pad_pipeline.core.errors import PadError


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a manifest field, e.g. --set runner.annotators=4 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pad", description="Patch-Aligned Dataset: build, inspect, train, analyse.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("annotate", help="build or resume a PAD dataset")
    p.add_argument("manifest")
    p.add_argument("--out", help="output folder or fsspec URL (default: output.path of the manifest)")
    p.add_argument("--shards", help="only these planned shards, e.g. 0,3-5")
    p.add_argument("--redo", help="rebuild these committed shards (e.g. the damaged ones `pad verify` names)")
    p.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)")
    _add_set(p)

    p = sub.add_parser("status", help="shard states, samples, regions, failures of a build")
    p.add_argument("out")

    p = sub.add_parser("verify", help="re-read every committed shard; non-zero on damage or missing shards")
    p.add_argument("out")
    p.add_argument("--allow-partial", action="store_true", help="planned shards not committed yet are no error")

    p = sub.add_parser("show", help="draw one sample's masks, boxes and tags")
    p.add_argument("out")
    p.add_argument("key")
    p.add_argument("--png", required=True)

    p = sub.add_parser("publish", help="upload a finished build with a dataset card to the Hugging Face Hub")
    p.add_argument("out")
    p.add_argument("--repo-id", required=True, help="dataset repo, e.g. org/pad-558k")
    p.add_argument("--dry-run", action="store_true", help="write OUT/README.md and list files; upload nothing")
    p.add_argument("--private", action="store_true")
    p.add_argument("--allow-partial", action="store_true", help="publish even if some shards are not committed")

    p = sub.add_parser("pretrain", help="stage 1: patch-aligned projector pretraining (DeepSpeed)")
    p.add_argument("manifest")
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    _add_set(p)

    p = sub.add_parser("analyze", help="the paper's measurements: entropy, Align(V, W), Cos Sim, token maps")
    p.add_argument("manifest")
    _add_set(p)
    return parser


def _annotate(args: argparse.Namespace) -> int:
    from pad_pipeline.annotate.config import load_annotate_config

    cfg = load_annotate_config(args.manifest, args.overrides)
    from pad_pipeline.ray.driver import run_annotate  # after the manifest validates: a typo fails without Ray
    summary = run_annotate(cfg, out=args.out, shards=args.shards, address=args.address, redo=args.redo)
    print(f"[pad] done in {summary.seconds:.1f}s: {len(summary.committed)} shards committed now, "
          f"{summary.skipped} already committed; {summary.samples} samples, {summary.regions} regions, "
          f"{summary.failures} image failures -> {summary.out}", file=sys.stderr)
    if summary.failed:
        shards = ",".join(str(i) for i in sorted(summary.failed))
        first = summary.failed[min(summary.failed)]
        print(f"pad: error: shards {shards} failed ({first}); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.status import build_status, format_status

    print(format_status(build_status(args.out)))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.status import repair_command, verify_build

    report = verify_build(args.out)
    for problem in report.problems:
        print(f"damaged: {problem}")
    print(json.dumps(report.summary()))
    if report.damaged:
        print(f"pad: error: {len(report.damaged)} damaged shard(s); rebuild exactly those with: "
              f"{repair_command(args.out, report.damaged)}", file=sys.stderr)
    if report.missing and not args.allow_partial:
        print(f"pad: error: {len(report.missing)} of {report.planned} planned shards are not committed; "
              "rerun `pad annotate` to finish them, or pass --allow-partial", file=sys.stderr)
    return 1 if report.problems or (report.missing and not args.allow_partial) else 0


def _show(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.show import show

    show(args.out, args.key, args.png)
    print(f"wrote {args.png}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from pad_pipeline.core import storage
    from pad_pipeline.tools.publish import publish

    plan = publish(args.out, args.repo_id, dry_run=args.dry_run, private=args.private,
                   allow_partial=args.allow_partial)
    if args.dry_run:
        storage.write_bytes(storage.join(args.out, "README.md"), plan.card.encode())
        print(f"dry run: card written to {storage.join(args.out, 'README.md')}; would upload "
              f"{len(plan.files)} files + README.md to datasets/{args.repo_id}")
    else:
        print(f"published {len(plan.files)} files + README.md to datasets/{args.repo_id}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from trainer.pretrain import run

    return run(args.manifest, args.overrides, resume=args.resume)


def _analyze(args: argparse.Namespace) -> int:
    from trainer.analysis.measure import run

    return run(args.manifest, args.overrides)


COMMANDS = {"annotate": _annotate, "status": _status, "verify": _verify, "show": _show, "publish": _publish,
            "pretrain": _pretrain, "analyze": _analyze}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except PadError as e:
        print(f"pad: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pad: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pad status OUT | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
