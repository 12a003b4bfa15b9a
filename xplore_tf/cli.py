"""Shared behaviour of the absl binaries: bad input ends in one clear line, not a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from absl import flags


def friendly_errors(stage: str) -> Callable:
    """Turns input errors (bad flag values, missing or malformed files) into `stage: error: ...`
    and exit status 2; programming errors keep their traceback."""

    def wrap(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        @functools.wraps(main)
        def wrapped(argv: list[str]) -> None:
            try:
                main(argv)
            except (ValueError, FileNotFoundError, NotADirectoryError, flags.Error) as e:
                print(f"xplore_tf.{stage}: error: {e}", file=sys.stderr)
                sys.exit(2)

        return wrapped

    return wrap
