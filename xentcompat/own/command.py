"""`xentcompat check` on the command line: its arguments, and the run that writes the results, the report, the repro
scripts and the summary. Exit status: 0 when every deviation is declared expected (and every declaration still seen),
1 otherwise, 2 for bad input (the callable does not import, is not callable, does not fit; a bad --expect file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.results.out_lock import output_directory

EPILOG = """The callable is called as fn(logits, targets, **options): logits (N, C) in the framework's array type and
the cell's dtype; targets the class-index labels (N,) or, with --targets probs, probabilities (N, C); only the options
it claims (--options), each when the case sets it. It returns the loss, or (loss, gradient); numpy callables return
both. Example: xentcompat check examples/naive_torch.py:cross_entropy --framework torch --options reduction"""


def add_parser(commands) -> None:
    check = commands.add_parser("check", help="check your own cross-entropy callable against the catalogue",
                                description=__doc__.splitlines()[0], epilog=EPILOG)
    check.add_argument("callable", metavar="MODULE:CALLABLE",
                       help="a module (dotted name, or a .py file) and a callable in it; end with () to call it once "
                            "for the loss object (an nn.Module class)")
    check.add_argument("--framework", required=True, choices=("torch", "jax", "tensorflow", "numpy"))
    check.add_argument("--targets", default="labels", choices=("labels", "probs"),
                       help="class-index labels (default) or probability targets")
    check.add_argument("--options", default="", metavar="NAME,...",
                       help="keyword options it takes: reduction, weight, ignore_index, label_smoothing (default none: "
                            "the cases that set one are listed as not run)")
    check.add_argument("--name", metavar="API",
                       help="the API id its records carry (default MODULE:CALLABLE); a cause entry naming it (e.g. "
                            "torchtune.modules.loss.CEWithChunkedOutputLoss) promises its cells' outcomes")
    check.add_argument("--dtypes", nargs="+", metavar="DTYPE", default=list(DTYPE_NAMES),
                       help=f"default: all ({', '.join(DTYPE_NAMES)})")
    check.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"), help="default cpu")
    check.add_argument("--mode", default="eager", choices=("eager", "compiled", "all"),
                       help="eager (default), compiled (torch.compile, jax.jit) or both")
    check.add_argument("--expect", type=Path, metavar="FILE",
                       help="a TOML file of [[expected]] deviations, each with a reason (README, 'Test your own "
                            "cross-entropy')")
    check.add_argument("--cases", type=Path, help="a user case file (JSON or NPZ) run besides the catalogue")
    check.add_argument("--only-cases", action="store_true", help="run only the --cases file's cases")
    check.add_argument("--out", type=output_directory, default=Path("xentcompat-check"),
                       help="directory for results.json, report.md, report.html and repro/ (default xentcompat-check)")
    check.set_defaults(command=check_command)


def check_command(args) -> int:
    from xentcompat.own.declared import DeclarationError, read
    from xentcompat.own.spec import OwnLoss, SpecError

    try:
        spec = OwnLoss(args.callable, args.framework, args.targets,
                       tuple(name for name in args.options.split(",") if name), args.name)
        plan = _plan(args, spec, read(args.expect) if args.expect else ())
        if spec.framework == "jax":
            os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 cells really 64-bit (read when jax is imported)
        from xentcompat.own import check

        outcome = check.run(plan, progress=_progress)
    except (SpecError, DeclarationError) as error:
        print(f"xentcompat: error: {error}", file=sys.stderr)
        return 2
    _write(outcome, args)
    return 0 if outcome.passed else 1


def _progress(done: int, total: int) -> None:
    """A line on stderr every tenth of the cells (stdout holds the summary)."""
    if done == total or done % max(1, total // 10) == 0:
        print(f"xentcompat check: {done} of {total} cells", file=sys.stderr, flush=True)


def _plan(args, spec, declared):
    from xentcompat.own.check import Plan
    from xentcompat.own.spec import SpecError
    from xentcompat.reference.case_file import load_cases

    unknown = [dtype for dtype in args.dtypes if dtype not in DTYPE_NAMES]
    if unknown:
        raise SpecError(f"--dtypes {unknown[0]!r}: expected among {', '.join(DTYPE_NAMES)}")
    if args.only_cases and not args.cases:
        raise SpecError("--only-cases needs --cases FILE")
    cases = tuple(load_cases(args.cases)) if args.cases else ()
    devices = ("cpu", "cuda") if args.device == "all" else (args.device,)
    modes = ("eager", "compiled") if args.mode == "all" else (args.mode,)
    return Plan(spec, tuple(dict.fromkeys(args.dtypes)), devices, modes, declared, cases, args.only_cases)


def _write(outcome, args) -> None:
    from xentcompat.own.summary import summary, write_repros
    from xentcompat.report.files import write_reports

    out: Path = args.out
    write_reports(outcome.document, out)
    repros = write_repros(outcome, out / "repro")
    print(summary(outcome, args.callable, out, repros))
