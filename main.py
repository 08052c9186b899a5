"""Mechscope: a desktop microscope for neural networks.

    python main.py                                   open the workbench
    python main.py FILE                              open a model file, your data or an image
    python main.py my_model.pt --data my_data.npz    evaluate your model on your data
    python main.py --model digits_cnn --layer conv2 --input 3 --screenshot out.png
    python main.py --smoke-test                      open, infer, ablate, exit 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys


def _parser() -> argparse.ArgumentParser:
    from core.zoo import DEFAULT_MODEL, ZOO

    models = "\n".join(f"  {e.name:<22} {e.title}\n  {'':<22} layers: {e.layers_hint} "
                       f"(default {e.default_layer})" for e in ZOO.values())
    epilog = (f"built-in models (--model) and their layers (--layer):\n{models}\n\n"
              "--text TEXT feeds typed text to a token model instead of --input: letters "
              "for induction_transformer, a sentence for minilm, a prompt for a language "
              "model such as smollm2-135m.")
    p = argparse.ArgumentParser(prog="mechscope", description=__doc__.splitlines()[0],
                                epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="a model file (.pt/.pth/.safetensors/.onnx/.keras), your data (a folder, "
                        ".npz, .csv) or an image to open, as File › Open would")
    p.add_argument("--data", metavar="DATA",
                   help="with FILE: evaluate the model FILE on this data — a .npz of inputs "
                        "and labels of any shape it reads, a .csv, or a folder with one "
                        "sub-folder of images per class (a classes.txt beside it names the "
                        "classes), e.g. python main.py my_model.pt --data my_data.npz")
    p.add_argument("--trust", action="store_true",
                   help="with FILE: trust FILE although it is code (a pickled model or "
                        "TorchScript), for scripted runs and the command line; without "
                        "it the window asks")
    p.add_argument("--model", choices=sorted(ZOO),
                   help=f"built-in model to open (default: the last one, else {DEFAULT_MODEL})")
    p.add_argument("--layer", help="layer to show, e.g. conv2 or fc1")
    p.add_argument("--input", type=int, metavar="N",
                   help="index of the held-out example to feed (default: the last one, else 0)")
    p.add_argument("--text", metavar="TEXT",
                   help="text to feed a token model: letters (e.g. KQBXDKQBXD) or a prompt "
                        "(e.g. \"The capital of France is\")")
    p.add_argument("--lesson", type=int, choices=range(1, 7), metavar="1-6",
                   help="open a lesson of the learning path (1 linear regression … "
                        "6 ablation studies)")
    p.add_argument("--steps", type=int, default=0,
                   help="with --lesson 1-3: train this many steps before the screenshot")
    p.add_argument("--importance", action="store_true",
                   help="measure the importance of each unit of --layer (channels, neurons "
                        "or heads) before the screenshot")
    p.add_argument("--probes", action="store_true",
                   help="train a linear probe on every layer (Analyse › Probes…) before "
                        "the screenshot")
    p.add_argument("--map", action="store_true",
                   help="map --layer's activations over the data (Analyse › Map of this "
                        "layer) before the screenshot")
    p.add_argument("--lens", action="store_true",
                   help="open the logit lens of the prompt (Analyse › Logit lens) before "
                        "the screenshot")
    p.add_argument("--lens-target", metavar="WORD",
                   help="with --lens: colour the lens by this word's probability (its "
                        "first token), e.g. \" Paris\"")
    p.add_argument("--heads", action="store_true",
                   help="open the overview of every attention head (Analyse › Every "
                        "head…) before the screenshot; with --importance it maps the "
                        "accuracy lost per head")
    p.add_argument("--task", metavar="NAME",
                   help="evaluate a language model on this task: induction, names or "
                        "text (smollm2-135m)")
    p.add_argument("--ablate", action="append", default=[], metavar="SITE:UNITS",
                   help="switch units off, e.g. conv2:3,7; heads at the layer's .heads "
                        "site, e.g. block18.attn.heads:6 (repeatable)")
    p.add_argument("--mode", choices=("zero", "mean"), default="zero",
                   help="ablation mode for --ablate (default: zero)")
    p.add_argument("--unit", metavar="SITE:N",
                   help="open the page of one unit before the screenshot, e.g. conv2:19 or "
                        "block1.attn:1 (a head)")
    p.add_argument("--look-for", action="store_true",
                   help="with --unit: run \"What does it look for?\" (feature "
                        "visualisation) too")
    p.add_argument("--patch", metavar="CLEAN|CORRUPT",
                   help="activation patching of a language model (Analyse › Activation "
                        "patching…): the clean and the corrupted prompt, of the same token "
                        "length, separated by |; every row of both grids before the "
                        "screenshot")
    p.add_argument("--answers", metavar="CLEAN|CORRUPT",
                   help="with --patch: the two answer tokens, e.g. \" Mary| John\" "
                        "(default: the model's top prediction on each prompt)")
    p.add_argument("--size", metavar="WxH",
                   help="window size for the screenshot, e.g. 1024x640")
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="save a PNG of the whole window once drawn, then exit")
    p.add_argument("--smoke-test", action="store_true",
                   help="open the window, run one inference and one ablation, exit 0")
    p.add_argument("--in-process", action="store_true",
                   help="run models in the window's process instead of a child process "
                        "(slower start; for debugging)")
    p.add_argument("--timing", action="store_true",
                   help="print when the window first paints and when the model is ready, "
                        "then exit (used by bench/bench_startup.py)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from core import ablation

    try:
        ablations = tuple(ablation.parse(text, args.mode) for text in args.ablate)
    except ValueError as exc:
        parser.error(str(exc))
    unit = size = None
    try:
        if args.unit:
            site, _, number = args.unit.rpartition(":")
            unit = (site, int(number))
            if not site:
                raise ValueError
        if args.size:
            width, _, height = args.size.lower().partition("x")
            size = (int(width), int(height))
    except ValueError:
        parser.error("--unit is SITE:N (e.g. conv2:19), --size is WxH (e.g. 1024x640)")
    if (args.data or args.trust) and not args.file:
        parser.error("--data and --trust go with a model FILE, e.g. "
                     "python main.py my_model.pt --data my_data.npz")
    patch = answers = None
    if args.patch or args.answers:
        pairs = [tuple(t.split("|")) for t in (args.patch, args.answers) if t]
        if not args.patch or any(len(p) != 2 for p in pairs):
            parser.error('--patch is "CLEAN|CORRUPT" (one |), --answers " Mary| John" with it')
        patch, answers = pairs[0], (pairs[1] if args.answers else None)
    # A scripted run on a machine with no display (a server, CI) draws offscreen
    # instead of aborting on the missing xcb display (found by a newcomer, issue #12).
    import os

    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and (args.screenshot or args.smoke_test or args.timing):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Before Qt loads: the compute process imports torch meanwhile (issue #4).
    from core.remote import RemoteSession
    from core.session import Session

    session = Session() if args.in_process else RemoteSession()
    from gui.app import Options, run

    try:
        return run(Options(args.model, args.layer, args.input, ablations, args.screenshot,
                           args.smoke_test, args.text, args.importance, args.timing,
                           args.lesson, args.steps, args.file, probes=args.probes,
                           lens=args.lens or bool(args.lens_target),
                           lens_target=args.lens_target or "",
                           layer_map=args.map, unit=unit, look_for=args.look_for,
                           size=size, patch=patch, answers=answers, heads=args.heads,
                           task=args.task or "", data=args.data, trust=args.trust),
                       session)
    finally:
        if isinstance(session, RemoteSession):
            session.close()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app's child process starts here
    sys.exit(main())
