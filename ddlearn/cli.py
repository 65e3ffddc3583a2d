"""The ``ddlearn`` command: run the book, train a recipe, list what there is.

    ddlearn book [--fast | --full] [--chapters 01 02] [--out DIR] [--slides] [--jobs N]
    ddlearn student [--out DIR] [--chapters 01 02]
    ddlearn train RECIPE [--fast] [--out DIR] [--seed N] [--device D] [--checkpoint-every N] [--resume] [--force]
                         [--amp] [--compile [BACKEND]]      (also under torchrun --nproc_per_node N -m ddlearn.cli)
    ddlearn convert NAME [--storage float16] [--dir DIR]
    ddlearn reevaluate NAME --why TEXT [--dir DIR]
    ddlearn list

An error is one line on stderr (``ddlearn: error: ...``) and a non-zero exit;
``--debug`` (before the subcommand) shows the full traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EPILOG_MAIN = """examples:
  ddlearn book --fast          run every chapter quickly, write the HTML book to _build/
  ddlearn train digits         retrain a shipped checkpoint from its recipe
  ddlearn student              write the student notebooks (solutions replaced by prompts) to _build/student/
  ddlearn list                 show the chapters and the training recipes
"""


class CLIError(Exception):
    """An error the user can fix; printed as one line."""


def _default_chapters_dir() -> Path:
    """``./chapters`` when run from the checkout, else the one beside the package."""
    here = Path("chapters")
    if here.is_dir():
        return here
    beside = Path(__file__).resolve().parents[1] / "chapters"
    if beside.is_dir():
        return beside
    raise CLIError("no chapters/ directory here or beside the ddlearn package; "
                   "run from the ddlearn checkout or pass --chapters-dir")


def _default_checkpoint_every() -> int:
    """``ddlearn.train.DEFAULT_CHECKPOINT_EVERY`` without importing torch for ``--help`` of other commands."""
    return 200  # kept equal to ddlearn.train.DEFAULT_CHECKPOINT_EVERY by tests/test_cli_train.py


def _recipe_names() -> list[str]:
    """The recipe names of :mod:`ddlearn.recipes` (imported only when needed, so ``book`` works without torch)."""
    from ddlearn import recipes

    return recipes.names()


# --------------------------------------------------------------------------- subcommands
def cmd_book(args) -> int:
    from ddlearn.book import build_book

    chapters_dir = Path(args.chapters_dir) if args.chapters_dir else _default_chapters_dir()
    start = time.perf_counter()
    try:
        result = build_book(chapters_dir, args.out, fast=args.fast, only=args.chapters,
                            timeout=args.timeout, progress=not args.no_progress, slides=args.slides,
                            jobs=args.jobs)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    print(result.table())
    for c in result.chapters:
        if c.error is not None:
            print("\n" + c.error.block(c.name), file=sys.stderr)
        elif c.status == "interrupted":
            print(f"\nINTERRUPTED {c.name}: {c.reason}", file=sys.stderr)
    print(f"\nHTML book: {result.index}  (executed notebooks in {Path(args.out) / 'notebooks'})")
    if args.slides:
        print(f"slides: {Path(args.out) / 'slides'}  (reveal.js, offline; open a .slides.html file)")
    print(f"mode: {'fast' if args.fast else 'full'}; {result.jobs} chapter(s) at a time; "
          f"wall time {time.perf_counter() - start:.1f} s")
    if result.signum is not None:  # stopped: say by what, what was cut short and what never started
        cut = [f"{c.name} ({c.reason})" for c in result.chapters if c.status == "interrupted"]
        never = [c.name for c in result.chapters if c.status == "not run"]
        print(f"ddlearn: stopped by {result.signal_name}"
              + (f"; interrupted: {', '.join(cut)}" if cut else "")
              + (f"; not run: {', '.join(never)}" if never else "")
              + "; the chapters that finished are in the book", file=sys.stderr)
        return 128 + result.signum
    if not result.ok:
        failed = [c.name for c in result.chapters if c.status != "ok"]
        print(f"ddlearn: error: {len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_train(args) -> int:
    from ddlearn import checkpoint, train

    names = _recipe_names()
    if args.recipe not in names:
        raise CLIError(f"unknown recipe {args.recipe!r}; choose from: {', '.join(names)} (see `ddlearn list`)")
    out = Path(args.out) if args.out is not None else train.DEFAULT_OUT
    main = os.environ.get("RANK", "0") == "0"   # under torchrun, process 0 alone touches OUT
    try:
        train.check_compile(args.compile)  # a misspelt backend is said before the folder or the data are made
        if main:
            checkpoint.check_folder(out, what="--out")  # before anything is trained
        result = train.run_recipe(args.recipe, fast=args.fast, out_dir=args.out, seed=args.seed, progress=True,
                                  device=args.device, checkpoint_every=args.checkpoint_every, resume=args.resume,
                                  force=args.force, amp=args.amp, compile=args.compile)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        state = train.state_path(out, args.recipe)
        if main and state.is_file():
            again = train.command_for(args.recipe, fast=args.fast, out_dir=args.out, seed=args.seed, device=args.device,
                                      amp=args.amp, compile=args.compile)
            print(f"ddlearn: the training state is saved in {state}; continue with `{again} --resume`",
                  file=sys.stderr)
        raise
    if result is not None:   # None on the processes other than 0 under torchrun
        print(f"checkpoint: {result}")
    return 0


def cmd_convert(args) -> int:
    from ddlearn import checkpoint, train

    try:
        result = train.convert_storage(args.name, args.storage, directory=args.dir)
    except (FileExistsError, ValueError, checkpoint.CheckpointError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"checkpoint: {result} ({result.stat().st_size} bytes, {args.storage})")
    return 0


def cmd_reevaluate(args) -> int:
    from ddlearn import checkpoint, train

    try:
        metrics = train.reevaluate(args.name, why=args.why, directory=args.dir)
    except (ValueError, checkpoint.CheckpointError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"{args.name}: metrics re-measured and stored in its sidecar: {metrics}")
    return 0


def cmd_student(args) -> int:
    from ddlearn.teaching import write_student_notebooks

    chapters_dir = Path(args.chapters_dir) if args.chapters_dir else _default_chapters_dir()
    try:
        written = write_student_notebooks(chapters_dir, args.out, only=args.chapters, force=args.force)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    for path in written:
        print(path)
    print(f"{len(written)} student notebook(s) in {args.out}: solutions replaced by prompts and checkers, "
          "outputs cleared")
    return 0


def cmd_list(args) -> int:
    import nbformat

    from ddlearn.book import chapter_title, find_chapters

    print("chapters:")
    try:
        chapters_dir = Path(args.chapters_dir) if args.chapters_dir else _default_chapters_dir()
        for path in find_chapters(chapters_dir):
            title = chapter_title(nbformat.read(path, as_version=4), path.stem)
            print(f"  {path.stem:<28} {title}")
    except (CLIError, FileNotFoundError) as exc:
        print(f"  (none: {exc})")
    print("recipes (ddlearn train RECIPE):")
    from ddlearn import recipes

    for name in recipes.names():
        doc = recipes.get(name).description.strip()
        doc = doc.splitlines()[0] if doc else ""
        print(f"  {name:<28} {doc}".rstrip())
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from ddlearn.book import usable_cores

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="ddlearn", formatter_class=fmt,
        description="ddlearn: a notebook-first textbook on diffusion models, with its library.",
        epilog=EPILOG_MAIN)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    book = sub.add_parser(
        "book", formatter_class=fmt, help="run every chapter notebook and write the HTML book",
        description=("Execute every chapter notebook (in a copy: chapters/ is not modified), write the\n"
                     "executed notebooks to OUT/notebooks/ and an HTML book to OUT/index.html,\n"
                     "and print a per-chapter time table. A failing chapter is reported with its\n"
                     "cell and error; the others still run; the exit status is then 1.\n"
                     "Up to N chapters run at once (--jobs N), each in its own kernel with one torch\n"
                     "thread; by default one per CPU core this process may use, at most one per chapter.\n"
                     "The results and the table's order do not depend on N.\n"
                     "Ctrl-C or SIGTERM stops the book: the running chapters' kernels are shut down,\n"
                     "no further chapter starts, the finished ones are kept; exit status 128 + signal."),
        epilog="examples:\n  ddlearn book                  full mode, every chapter (minutes per chapter)\n"
               "  ddlearn book --fast           fast mode (DDLEARN_FAST=1): every cell, smaller sizes\n"
               "  ddlearn book --chapters 01 02 --out /tmp/book\n"
               "  ddlearn book --fast --jobs 1  one chapter after another")
    mode = book.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", help="fast mode: DDLEARN_FAST=1 for the kernel")
    mode.add_argument("--full", dest="fast", action="store_false", help="full mode, what a reader gets (default)")
    book.set_defaults(fast=False)
    book.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters, by number (01 or 1)")
    book.add_argument("--out", default="_build", metavar="DIR", help="output folder (default: _build)")
    book.add_argument("--chapters-dir", metavar="DIR", help="where the chapter notebooks are (default: ./chapters)")
    book.add_argument("--timeout", type=int, default=1800, metavar="S", help="limit for one cell, seconds (default 1800)")
    book.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                      help=f"run up to N chapters at once, each in its own kernel (default: the CPU cores this "
                           f"process may use, here {usable_cores()}, at most the number of chapters)")
    book.add_argument("--no-progress", action="store_true", help="no progress bars")
    book.add_argument("--slides", action="store_true",
                      help="also write each chapter as reveal.js slides to OUT/slides/ (offline)")
    book.set_defaults(func=cmd_book)

    student = sub.add_parser(
        "student", formatter_class=fmt, help="write the student notebooks (solutions replaced by prompts)",
        description=("Write one student notebook per chapter: every cell tagged 'solution' in the chapter's\n"
                     "source is replaced by a prompt and its checker call, and every output is cleared.\n"
                     "Nothing is executed. The chapters themselves are the solution notebooks."),
        epilog="examples:\n  ddlearn student                        every chapter, to _build/student/\n"
               "  ddlearn student --chapters 01 03 --out handouts")
    student.add_argument("--out", default="_build/student", metavar="DIR",
                         help="output folder (default: _build/student)")
    student.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters, by number (01 or 1)")
    student.add_argument("--chapters-dir", metavar="DIR", help="where the chapter sources are (default: ./chapters)")
    student.add_argument("--force", action="store_true",
                         help="replace student notebooks already in DIR (never the chapters themselves)")
    student.set_defaults(func=cmd_student)

    train = sub.add_parser(
        "train", formatter_class=fmt, help="train a model from a named recipe",
        description="Train the recipe that made a shipped checkpoint, with a progress bar;\n"
                    "writes a safetensors checkpoint and its JSON sidecar to OUT. The training state\n"
                    "is saved every --checkpoint-every steps (and on Ctrl-C), so --resume continues\n"
                    "an interrupted run. OUT is checked before the first step; an existing\n"
                    "checkpoint is replaced only with --force, and safely (see ddlearn.checkpoint).",
        epilog="examples:\n  ddlearn list                       see the recipe names\n"
               "  ddlearn train RECIPE --fast        a short run to check it works\n"
               "  ddlearn train RECIPE --seed 1 --out runs/mine\n"
               "  ddlearn train RECIPE --resume      continue after Ctrl-C (or a crash) where the state was saved\n"
               "  torchrun --nproc_per_node 2 -m ddlearn.cli train RECIPE    two processes (GPUs), same command")
    train.add_argument("recipe", metavar="RECIPE", help="recipe name (see `ddlearn list`)")
    train.add_argument("--fast", action="store_true", help="a much shorter run (fast mode sizes)")
    train.add_argument("--out", default=None, metavar="DIR",
                       help="folder for NAME.safetensors + NAME.json and the training state (default: ./runs)")
    train.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default: the recipe's)")
    train.add_argument("--device", default=None, metavar="D",
                       help="cpu, cuda or mps (default: $DDLEARN_DEVICE, else cuda, else mps, else cpu)")
    train.add_argument("--checkpoint-every", type=int, default=_default_checkpoint_every(), metavar="N",
                       help=f"save the training state OUT/NAME.train-state.safetensors every N steps "
                            f"(default {_default_checkpoint_every()}; 0: only at the end)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its training state in OUT (same result, bit for bit)")
    train.add_argument("--force", action="store_true",
                       help="replace an existing checkpoint (or an interrupted run's state) in OUT")
    train.add_argument("--amp", action="store_true",
                       help="bfloat16 autocast for the forward pass (GPUs with bf16; off by default)")
    train.add_argument("--compile", nargs="?", const=True, default=False, metavar="BACKEND",
                       help="torch.compile the net (optionally with BACKEND; off by default)")
    train.set_defaults(func=cmd_train)

    reev = sub.add_parser(
        "reevaluate", formatter_class=fmt, help="re-run a checkpoint's evaluations and store them in its sidecar",
        description=("Run the recipe's evaluations again on a trained checkpoint's weights (for when the code they\n"
                     "use changed, e.g. a sampler's defaults) and store the new metrics in its sidecar; the weights\n"
                     "and their sha256 stay, the sidecar keeps the metrics before, why and the command."),
        epilog='example:\n  ddlearn reevaluate video16 --why "animate() samples with eta 1 now"')
    reev.add_argument("name", metavar="NAME", help="checkpoint name (NAME.safetensors + NAME.json in DIR)")
    reev.add_argument("--why", required=True, help="what changed in the evaluation (stored in the sidecar)")
    reev.add_argument("--dir", default=None, metavar="DIR", help="folder of the checkpoint (default: the shipped one)")
    reev.set_defaults(func=cmd_reevaluate)

    convert = sub.add_parser(
        "convert", formatter_class=fmt, help="re-store a trained checkpoint as float16 (half the bytes)",
        description="Round a trained checkpoint's weights to --storage, run its recipe's evaluations\n"
                    "again on the rounded weights and rewrite the pair safely (new sha256; the sidecar\n"
                    "says it was converted, by which command, and keeps the metrics before).",
        epilog="example:\n  ddlearn convert phantom64 --storage float16 --dir ddlearn/pretrained")
    convert.add_argument("name", metavar="NAME", help="checkpoint name (NAME.safetensors + NAME.json in DIR)")
    convert.add_argument("--storage", default="float16", choices=["float16", "float32"],
                         help="dtype of the weights file (default: float16; the loader restores float32)")
    convert.add_argument("--dir", default=None, metavar="DIR",
                         help="folder holding the checkpoint (default: the shipped ddlearn/pretrained)")
    convert.set_defaults(func=cmd_convert)

    lst = sub.add_parser(
        "list", formatter_class=fmt, help="list the chapters and the training recipes",
        description="List the chapter notebooks (with their titles) and the recipes `ddlearn train` knows.",
        epilog="example:\n  ddlearn list")
    lst.add_argument("--chapters-dir", metavar="DIR", help="where the chapter notebooks are (default: ./chapters)")
    lst.set_defaults(func=cmd_list)
    for sp in (book, train, lst, student):  # --debug also after the subcommand; SUPPRESS keeps the top-level value
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ddlearn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, CLIError):  # unexpected: say what kind, and how to see more
            message = f"{type(exc).__name__}: {message} (run `ddlearn --debug ...` for the traceback)"
        print(f"ddlearn: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
