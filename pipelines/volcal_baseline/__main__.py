"""Command line: ``python -m pipelines.volcal_baseline --pre A.las --post B.laz --stable S.shp
--out DIR [--params P.json] [--<param> VALUE ...]``.

Exit 0 on success; 2 with one ``error: ...`` line on stderr when the inputs cannot give a
trustworthy answer; 1 with ``error: internal error ...`` for bugs.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InputError
from .spec import SPEC


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.volcal_baseline", description=SPEC.description
    )
    ap.add_argument("--pre", type=Path, required=True, help="earlier survey (.las/.laz)")
    ap.add_argument("--post", type=Path, required=True, help="later survey (.las/.laz)")
    ap.add_argument(
        "--stable",
        type=Path,
        required=True,
        help="stable-area polygons (.shp, with .shx beside it)",
    )
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="folder for the M3C2 tiles' points, about 12 bytes per point and epoch plus the "
        "halos (default: a hidden folder in --out); removed before the run ends",
    )
    ap.add_argument(
        "--params",
        type=Path,
        default=None,
        help="JSON object of parameters (flags below override it)",
    )
    for p in SPEC.params:
        ap.add_argument(
            f"--{p.name.replace('_', '-')}",
            dest=f"param_{p.name}",
            type=_boolean if p.kind is bool else p.kind,
            default=None,
            help=f"{p.description} (default {p.default})",
        )
    return ap


def _params(args: argparse.Namespace) -> dict[str, Any]:
    given: dict[str, Any] = {}
    if args.params is not None:
        try:
            given = json.loads(args.params.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"parameters file '{args.params}' is not readable JSON: {exc}"
            ) from exc
        if not isinstance(given, dict):
            raise InputError("parameters file must hold a JSON object")
    for p in SPEC.params:
        value = getattr(args, f"param_{p.name}")
        if value is not None:
            given[p.name] = value
    try:
        return SPEC.validate_params(given)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        params = _params(args)
        for slot, path in (("pre", args.pre), ("post", args.post)):
            if not path.is_file():
                raise InputError(f"input '{slot}' does not exist: {path}")
        # Imported here so that argument errors answer fast and the spec stays importable
        # without the scientific stack.
        from .pipeline import Inputs, run

        doc = run(Inputs(args.pre, args.post, args.stable), params, args.out, args.scratch)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:
        traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                k: doc[k]
                for k in ("cut_volume_m3", "fill_volume_m3", "net_volume_m3", "region_count")
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
