"""How much the libraries under the commands print: quiet unless ``--verbose`` (or ``PLM_NAS_VERBOSE=1``).

transformers reports every load of a checkpoint whose head is new (a table of MISSING classifier weights and a
note to train the model, which is what every command does next) and draws "Loading weights" and "Writing model
shards" bars; a command's own lines and its one-line error would drown in them. :func:`configure_output` turns
them off, or back on, through transformers' logging API; our own progress bars (tqdm, ``--no-progress``) are
not touched. The entry points call it: the ``plm-nas`` command line and a standard-NAS trial, which runs in a
process of its own and inherits ``PLM_NAS_VERBOSE`` from the command that started it.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Sequence

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "PLM_NAS_VERBOSE"
TRUE_VALUES = ("1", "true", "yes", "on")


def verbose_requested(argv: Sequence[str] = ()) -> bool:
    """``--verbose`` on the command line, or ``PLM_NAS_VERBOSE`` set to a true value."""
    return VERBOSE_FLAG in argv or os.environ.get(VERBOSE_ENV, "").strip().lower() in TRUE_VALUES


def configure_output(verbose: bool | None = None) -> None:
    """Silence transformers' load reports (warnings and below) and its weight-loading and shard-writing bars, or,
    when ``verbose`` (default: :func:`verbose_requested`), restore them and record ``PLM_NAS_VERBOSE=1`` in the
    environment, so that the steps and trials this process starts are verbose too.

    Errors stay visible either way, and download bars of the Hugging Face hub are left as they were.
    """
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    if importlib.util.find_spec("transformers") is None:
        return
    import huggingface_hub.utils as hub
    from transformers.utils import logging

    hub_bars = not hub.are_progress_bars_disabled()
    if verbose:  # transformers' own default, or the level TRANSFORMERS_VERBOSITY names
        default = logging.log_levels["warning"]
        logging.set_verbosity(logging.log_levels.get(os.environ.get("TRANSFORMERS_VERBOSITY", ""), default))
        logging.enable_progress_bar()
    else:
        logging.set_verbosity_error()
        logging.disable_progress_bar()  # it turns the hub's bars off too: those were not ours to hide
    if hub_bars:
        hub.enable_progress_bars()
    else:
        hub.disable_progress_bars()
