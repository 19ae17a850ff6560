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


def _add_look_and_share(sub: argparse._SubParsersAction) -> None:
    """`pad stats`, `pad show` and `pad publish`: looking at a build and sharing it."""
    p = sub.add_parser("stats", help="statistics of a build; optional plots and a static gallery page")
    p.add_argument("out")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    p.add_argument("--plots", metavar="DIR", help="write the plots as PNGs into DIR")
    p.add_argument("--html", metavar="FILE", help="write one self-contained page: numbers, plots, a gallery")
    p.add_argument("--gallery", type=int, default=24, metavar="N", help="random samples in the page (24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the gallery's choice")

    p = sub.add_parser("show", help="draw one sample's masks, boxes and tags (and the vision tokens)")
    p.add_argument("out")
    p.add_argument("key")
    p.add_argument("--png", required=True)
    p.add_argument("--grid", action="store_true", help="overlay the token grid and mark the tokens each label "
                                                       "selects (default: CLIP ViT-L/14-336, 24x24)")
    p.add_argument("--manifest", help="with --grid: a `pad pretrain` manifest whose vision tower, projector and "
                                      "data settings decide the grid")

    p = sub.add_parser("publish", help="a finished build as a Hugging Face Hub dataset repository with a card")
    p.add_argument("out")
    p.add_argument("--repo-id", required=True, help="dataset repo, e.g. org/pad-558k")
    p.add_argument("--dry-run", metavar="DIR", help="write the repository into DIR (outside the build), list "
                                                    "its files; upload nothing")
    p.add_argument("--private", action="store_true")
    p.add_argument("--allow-partial", action="store_true", help="publish even if some shards are not committed")
    for flag in ("license", "license-name", "license-link", "source", "citation", "pretty-name"):
        p.add_argument(f"--{flag}", help=f"overrides publish.{flag.replace('-', '_')} of OUT/config.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pad", description="Patch-Aligned Dataset: build, inspect, train, analyse.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("annotate", help="build or resume a PAD dataset")
    p.add_argument("manifest")
    p.add_argument("--out", help="output folder or fsspec URL (default: output.path of the manifest)")
    p.add_argument("--shards", help="only these planned shards, e.g. 0,3-5")
    p.add_argument("--redo", help="rebuild these committed shards (e.g. the damaged ones `pad verify` names); "
                                  "`all`: every shard (also of a build whose plan.json is gone)")
    p.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)")
    _add_set(p)

    p = sub.add_parser("status", help="shard states, samples, regions, failures of a build")
    p.add_argument("out")

    p = sub.add_parser("verify", help="re-read every committed shard; non-zero on damage or missing shards")
    p.add_argument("out")
    p.add_argument("--allow-partial", action="store_true", help="planned shards not committed yet are no error")

    _add_look_and_share(sub)

    p = sub.add_parser("pretrain", help="stage 1: patch-aligned projector pretraining (DeepSpeed)")
    p.add_argument("manifest")
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    _add_set(p)

    from trainer.export.formats import DTYPE_NAMES, FORMATS  # torch-free: the trainer's one list

    p = sub.add_parser("export", help="a trained run as transformers Llava, LLaVA's own format or PAD's")
    p.add_argument("run", help="the output_dir of a `pad pretrain` or `pad sft` run")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--checkpoint", help="step-N or N (default: the newest complete checkpoint)")
    p.add_argument("--dtype", choices=DTYPE_NAMES, help="default: the run's export.dtype")
    p.add_argument("--out", help="output folder (default: RUN/export-hf, RUN/export-llava or RUN/export; "
                                 "with --checkpoint, suffixed -step-N)")

    p = sub.add_parser("sft", help="stage 2: instruction tuning of projector and LLM (DeepSpeed ZeRO-3)")
    p.add_argument("manifest")
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    p.add_argument("--check", action="store_true", help="only list every bad sample by id (tokenizer, no model)")
    _add_set(p)

    p = sub.add_parser("analyze", help="the paper's measurements: entropy, Align(V, W), Cos Sim, token maps")
    p.add_argument("manifest")
    _add_set(p)

    p = sub.add_parser("eval", help="the paper's evaluation: captions (Table 4), REC (Table 5), lmms-eval (6-7)")
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


def _stats(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.stats import compute_stats, format_stats

    stats = compute_stats(args.out)
    print(json.dumps(stats.to_json(), indent=1) if args.json else format_stats(stats))
    if args.plots or args.html:
        from pad_pipeline.tools.plots import stats_plots, write_plots

        plots = stats_plots(stats)
        if args.plots:
            print(f"wrote {len(write_plots(plots, args.plots))} plots to {args.plots}", file=sys.stderr)
        if args.html:
            from pad_pipeline.tools.gallery import write_gallery

            n = write_gallery(args.out, stats, plots, args.html, args.gallery, args.seed)
            print(f"wrote {args.html} ({n} gallery samples)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.show import show

    grid = None
    if args.grid:
        from trainer.data.patches.grid import default_token_grid, token_grid_from_manifest

        grid = token_grid_from_manifest(args.manifest) if args.manifest else default_token_grid()
    for line in show(args.out, args.key, args.png, grid):
        print(line)
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from pad_pipeline.tools.publish import publish

    flags = {k: getattr(args, k) for k in ("license", "license_name", "license_link", "source", "citation",
                                           "pretty_name")}
    files = publish(args.out, args.repo_id, dry_run=args.dry_run, private=args.private,
                    allow_partial=args.allow_partial, settings=flags, log=lambda m: print(m, file=sys.stderr))
    total = sum(f.size for f in files)
    if args.dry_run:
        for f in files:
            print(f"{f.size:>14}  {f.path}")
        print(f"dry run: wrote the repository to {args.dry_run}; would upload {len(files)} files "
              f"({total / 2**20:.1f} MiB) to datasets/{args.repo_id}", file=sys.stderr)
    else:
        print(f"datasets/{args.repo_id} holds the build's {len(files)} files ({total / 2**20:.1f} MiB)",
              file=sys.stderr)
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from trainer.training.driver import run_pretrain

    return run_pretrain(args.manifest, args.overrides, resume=args.resume)


def _export(args: argparse.Namespace) -> int:
    from trainer.export.write import run_export

    out, step = run_export(args.run, args.fmt, checkpoint=args.checkpoint, out=args.out, dtype=args.dtype)
    print(f"pad export: {args.fmt} export of {step} written to {out}", file=sys.stderr)
    return 0


def _sft(args: argparse.Namespace) -> int:
    from trainer.training.driver import run_sft

    return run_sft(args.manifest, args.overrides, resume=args.resume, check_only=args.check)


def _analyze(args: argparse.Namespace) -> int:
    from trainer.analysis.measure import run

    return run(args.manifest, args.overrides)


def _eval(args: argparse.Namespace) -> int:
    from trainer.eval.cli import run

    return run(args.manifest, args.overrides)


COMMANDS = {"annotate": _annotate, "status": _status, "verify": _verify, "stats": _stats, "show": _show,
            "publish": _publish, "pretrain": _pretrain, "export": _export, "sft": _sft, "analyze": _analyze,
            "eval": _eval}


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
