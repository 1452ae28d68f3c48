"""``python -m training.fit``: train a contrast-synthesis network and export it to the model store.

Run ``python -m training.fit --help`` for the options. A bad option or dataset ends with one
``error: ...`` line on stderr and exit status 2, never a traceback; the settings, the loop and
the export live in :mod:`training.fitting`. While training, log lines go through
``tqdm.contrib.logging.logging_redirect_tqdm`` so that they do not tear the progress bar apart.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from synnet.errors import SynnetError
from training.checkpoint import load_checkpoint
from training.fitting.cli import build_parser, make_config, with_recipe
from training.fitting.config import FitConfig
from training.fitting.run import run


def setup_logging(run_dir: str | None = None) -> None:
    """INFO on rank 0 (stderr and ``<run_dir>/train.log``), warnings only on the other ranks."""
    main_rank = os.environ.get("RANK", "0") == "0"
    root = logging.getLogger()
    root.setLevel(logging.INFO if main_rank else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(message)s" if main_rank else f"[rank {os.environ.get('RANK')}] %(message)s")
    )
    root.handlers = [handler]
    if run_dir and main_rank:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        log_file = logging.FileHandler(Path(run_dir) / "train.log")
        log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(log_file)


def main(argv: list[str] | None = None) -> int:
    """Parse, train, export; returns the process exit status."""
    given = vars(build_parser().parse_args(argv))
    setup_logging()
    try:
        given = with_recipe(given)
        resume = load_checkpoint(given["resume"]) if "resume" in given else None
        base = None
        if resume is not None:
            base = FitConfig.from_json(resume["config"])
            given.setdefault("run_dir", str(Path(given["resume"]).parent))  # continue next to the checkpoint
        config = make_config(given, base)
        setup_logging(config.output.run_dir)
        with logging_redirect_tqdm():
            run(config, resume, given.get("resume"))
    except (SynnetError, OSError) as error:  # bad input or an unwritable/missing path: one line, no traceback
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank fails alike: say it once
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume <run-dir>/last.pt", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
