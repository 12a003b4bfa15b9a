"""Shared behaviour of the absl binaries: bad input ends in one clear line, not a traceback."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable

from absl import flags, logging

# TensorFlow runtime errors a user's environment causes (files, disk, memory, peers,
# permissions), by class name: one line like bad input. Others (InvalidArgumentError, ...)
# are usually the program's own and keep their traceback.
USER_CAUSED_TF_ERRORS = (
    "DataLossError",
    "ResourceExhaustedError",
    "UnavailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "AbortedError",
)


def one_line(error: BaseException) -> str:
    """The error's message; for TensorFlow's, its class and the first line that says what
    happened (not the graph-execution preamble and node dumps)."""
    if not type(error).__module__.startswith("tensorflow"):
        return str(error)
    text = getattr(error, "message", None) or str(error)
    lines = tf_message_lines(text)
    return f"{type(error).__name__}: {lines[0] if lines else text.strip()}"


def tf_message_lines(text: str) -> list[str]:
    """The lines of a TensorFlow error message that say what happened (its preamble and
    node dumps left out)."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.strip().startswith(
            ("Graph execution error", "Detected at node", "<stack traces", "[[{{node")
        )
    ]


def _is_user_caused(error: BaseException) -> bool:
    if isinstance(error, (ValueError, OSError, flags.Error)):
        return True
    return type(error).__name__ in USER_CAUSED_TF_ERRORS and "tensorflow" in type(error).__module__


def friendly_errors(stage: str) -> Callable:
    """Turns errors a user can cause (bad flag values, missing, malformed or damaged files, a
    full disk, a busy port, a lost peer) into `xplore_tf.<stage>: error: ...` and exit
    status 2; the traceback is printed too with --verbosity=1. Programming errors keep
    their traceback."""

    def wrap(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        @functools.wraps(main)
        def wrapped(argv: list[str]) -> None:
            try:
                main(argv)
            except Exception as e:  # noqa: BLE001 - sorted below; the rest is re-raised
                if not _is_user_caused(e):
                    raise
                if logging.get_verbosity() >= logging.DEBUG:
                    traceback.print_exc()
                print(f"xplore_tf.{stage}: error: {one_line(e)}", file=sys.stderr)
                sys.exit(2)

        return wrapped

    return wrap
