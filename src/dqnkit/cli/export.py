"""dqn-export: turn a checkpoint into standalone TorchScript and ONNX models, with a parity proof."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dqnkit.cli.common import make_parser, positive_int
from dqnkit.errors import run_command

EPILOG = """\
examples:
  dqn-export --ckpt runs/cartpole_dqn_seed0                 # the run's best checkpoint -> runs/.../export/
  dqn-export --ckpt runs/x/final.pth.tar --format onnx --out exported/
  dqn-export --ckpt ding_run/ckpt/eval.pth.tar --config configs/lunarlander.py   # a plain DI-engine checkpoint
  dqn-export --ckpt runs/lunarlander_dqn_seed0 --precision int8 --precision fp16  # also model.int8.onnx, .fp16

Writes model.pt (TorchScript: needs only torch), model.onnx (needs only onnxruntime) and export.json. Both models
take obs float32 [batch, obs_dim] (Atari: the preprocessed uint8 frames [batch, 4, 84, 84]) and return q_values
float32 [batch, n_actions] and action int64 [batch].
Nothing is written unless both match the DI-engine network on 4,096 observations (exit 1 otherwise).
--precision fp16|int8 also writes a reduced-precision ONNX model, only if it acts like the fp32 one: the same
greedy action on at least 95% of the states the policy visits, and a mean return over N seeded episodes within the
fp32 model's 95% confidence interval (exit 1 and nothing written otherwise).
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-export", __doc__ or "", EPILOG)
    p.add_argument("--ckpt", required=True, metavar="PATH", help="a checkpoint, or a run folder (its best checkpoint)")
    p.add_argument("--format", choices=("torchscript", "onnx", "all"), default="all", help="default: all")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <run>/export/)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version (default 17)")
    p.add_argument("--config", metavar="FILE", help="the training config; needed only for plain DI-engine checkpoints")
    p.add_argument(
        "--quantiles",
        type=positive_int,
        default=32,
        metavar="K",
        help="IQN only: average Q over K evenly spaced quantile fractions, (k + 0.5) / K (default 32)",
    )
    p.add_argument(
        "--distribution",
        action="store_true",
        help="c51, qrdqn, iqn, rainbow: add the return distribution as a third output (described in the metadata)",
    )
    p.add_argument(
        "--precision",
        action="append",
        choices=("fp16", "int8"),
        default=[],
        help="also write model.fp16.onnx / model.int8.onnx, if it acts like the fp32 model (repeatable)",
    )
    p.add_argument(
        "--check-episodes",
        type=positive_int,
        default=20,
        metavar="N",
        help="with --precision: seeded episodes over which its mean return must fall in fp32's 95%% interval "
        "(default 20)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not 7 <= args.opset <= 21:
        build_parser().error(f"--opset {args.opset}: supported opsets are 7 to 21")
    if args.precision and args.format == "torchscript":
        build_parser().error("--precision makes reduced ONNX models from the fp32 one: use --format onnx or all")

    def command() -> int:
        from dqnkit.export import FORMATS, export_checkpoint
        from dqnkit.quiet import silence_warnings
        from dqnkit.validate import writable_dir

        silence_warnings()
        if args.out is not None:
            writable_dir(Path(args.out), "--out", create=False)
        formats = FORMATS if args.format == "all" else (args.format,)
        result = export_checkpoint(
            args.ckpt,
            formats=formats,
            out_dir=args.out,
            opset=args.opset,
            config_path=args.config,
            fractions=args.quantiles,
            precisions=tuple(args.precision),
            check_episodes=args.check_episodes,
            distribution=args.distribution,
            log=lambda line: print(line, file=sys.stderr),
        )
        for path in result.files.values():
            print(path)
        print(result.out_dir / "export.json")
        return 0

    run_command("dqn-export", command)


if __name__ == "__main__":
    main()
