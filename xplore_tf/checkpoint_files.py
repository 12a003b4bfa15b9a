"""The checkpoint files of a run: found, read, written and pruned without losing work.

A run's checkpoints are `WORKDIR/checkpoints/ckpt-<step>.index` plus its data shards
`ckpt-<step>.data-<i>-of-<n>`, written by `tf.train.Checkpoint.write`. This module replaces
`tf.train.CheckpointManager` and `tf.train.latest_checkpoint`, which find checkpoints
through glob patterns and a `checkpoint` state file:

- **Lookup** lists the folder (`steps`): a folder whose name holds `[`, `]`, `*` or `?` is
  not a pattern here, and a state file that names files that are gone misleads nobody.
  TensorFlow's reader still globs the path it is given, so reads go through `readable`
  (`io_utils.glob_safe`: the same files under a symlinked folder whose name is plain).
- **Fallback** (`newest`): the newest checkpoint that a caller's restore accepts; one whose
  files are cut short or missing is skipped with the reason (`DAMAGE`), never a silent
  restart from step 0.
- **Writes** (`write`): a failure (disk full, a file-size limit) is one `CheckpointWriteError`
  naming the folder and the checkpoint that stays the newest; what an interrupted save
  leaves (`ckpt-N_temp/`, data shards without their index) is removed at the next start
  (`remove_debris`).
- **Pruning** (`prune`) deletes a checkpoint's index first, then its data: a kill in between
  leaves only unlisted data shards, which `remove_debris` removes.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable

from xplore_tf import io_utils

PREFIX = "ckpt"
_INDEX = re.compile(r"^ckpt-([0-9]+)\.index$")
_DATA = re.compile(r"^ckpt-([0-9]+)\.data-([0-9]+)-of-([0-9]+)$")
_TEMP = re.compile(r"^ckpt-[0-9]+_temp")
STATE_FILE = "checkpoint"  # tf.train.CheckpointManager's list (older runs have one)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (one line: the folder, the cause, what is kept)."""


def damage_errors() -> tuple[type[BaseException], ...]:
    """What TensorFlow raises for a checkpoint whose files are cut short, corrupt or gone."""
    import tensorflow as tf

    # "Read less bytes than requested" is an IndexError; "not an sstable", a missing shard
    # and a bad checksum are OpErrors (DataLossError, NotFoundError, ...).
    return (tf.errors.OpError, IndexError)


def prefix_of(checkpoint_dir: str, step: int) -> str:
    return os.path.join(checkpoint_dir, f"{PREFIX}-{step}")


def step_of(prefix: str) -> int:
    """The step in a checkpoint prefix's name (`.../ckpt-1200` -> 1200)."""
    return int(os.path.basename(prefix).rsplit("-", 1)[1])


def _names(checkpoint_dir: str) -> list[str]:
    try:
        return os.listdir(checkpoint_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []


def steps(checkpoint_dir: str) -> list[int]:
    """Steps of the checkpoints whose index file exists, newest first."""
    found = (_INDEX.match(name) for name in _names(checkpoint_dir))
    return sorted((int(m.group(1)) for m in found if m), reverse=True)


def is_whole(prefix: str) -> bool:
    """Whether checkpoint `prefix` has its index and every data shard it names."""
    folder, base = os.path.split(prefix)
    names = _names(folder)
    if f"{base}.index" not in names:
        return False
    shards = [m for m in (_DATA.match(n) for n in names) if m and m.group(0).startswith(base + ".")]
    return bool(shards) and len(shards) == int(shards[0].group(3))


def holds_work(checkpoint_dir: str) -> bool:
    """Whether the folder holds any checkpoint file or a checkpoint list (older runs')."""
    return any(
        name == STATE_FILE or name.startswith(f"{PREFIX}-") for name in _names(checkpoint_dir)
    )


def readable(prefix: str) -> str:
    """`prefix` as TensorFlow's checkpoint reader can find it: through `io_utils.glob_safe`
    when its folder's path holds glob characters (`runs/exp[1]`)."""
    folder, base = os.path.split(os.path.abspath(prefix))
    return os.path.join(io_utils.glob_safe(folder), base)


def read_tensor(prefix: str, key: str):
    """The value of `key` in the checkpoint; None when the checkpoint has no such entry.

    Raises the damage errors (IndexError, tf.errors.OpError) when the files cannot be read.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(readable(prefix))
    if not reader.has_tensor(key):
        return None
    return reader.get_tensor(key)


def newest(
    checkpoint_dir: str, accept: Callable[[str], object]
) -> tuple[str | None, list[tuple[str, str]]]:
    """(the newest checkpoint `accept` takes, [(checkpoint, why skipped)] of newer ones).

    `accept(prefix)` restores or reads it (through `readable`); a damage error (files cut
    short, corrupt, missing shards) skips to the next older checkpoint. Other errors (a
    checkpoint of other models or clusters) propagate: they are not damage.
    """
    damage = damage_errors()
    skipped = []
    for step in steps(checkpoint_dir):
        prefix = prefix_of(checkpoint_dir, step)
        if not is_whole(prefix):
            skipped.append((prefix, "some of its data files are missing"))
            continue
        try:
            accept(prefix)
        except damage as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            skipped.append((prefix, f"unreadable ({type(e).__name__}: {first})"))
            continue
        return prefix, skipped
    return None, skipped


def no_checkpoint_error(checkpoint_dir: str, skipped: list[tuple[str, str]], fix: str) -> str:
    """One line for a folder that holds checkpoint files of which none can be used."""
    found = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in skipped) or (
        "no whole checkpoint (only " + ", ".join(sorted(_names(checkpoint_dir))[:6]) + ")"
    )
    return f"{checkpoint_dir} holds checkpoint files but none can be read ({found}); {fix}"


def debris(checkpoint_dir: str) -> list[str]:
    """Names of what interrupted saves and prunes left: `ckpt-N_temp*` entries and data
    shards whose index is gone."""
    indexed = {f"{PREFIX}-{s}" for s in steps(checkpoint_dir)}
    return [
        name
        for name in _names(checkpoint_dir)
        if _TEMP.match(name) or (_DATA.match(name) and name.split(".data-")[0] not in indexed)
    ]


def remove_debris(checkpoint_dir: str) -> list[str]:
    """Removes `debris`; returns the names removed."""
    found = debris(checkpoint_dir)
    for name in found:
        _remove(os.path.join(checkpoint_dir, name))
    return found


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def write(checkpoint, checkpoint_dir: str, step: int) -> str:
    """`checkpoint.write` to ckpt-<step>; returns the prefix.

    Raises:
        CheckpointWriteError: the files could not be written (disk full, a file-size limit,
            permissions): one line naming the folder, the cause and the newest checkpoint
            kept; the partial files are removed.
    """
    import tensorflow as tf

    os.makedirs(checkpoint_dir, exist_ok=True)
    prefix = prefix_of(checkpoint_dir, step)
    # Created now, so the file holds it: `restore` creates it in the restoring object, and
    # `assert_existing_objects_matched` then wants a value for it.
    checkpoint.save_counter.assign_add(1)
    try:
        return checkpoint.write(prefix)
    except (tf.errors.OpError, OSError) as e:
        for name in _names(checkpoint_dir):
            if name.startswith((f"{PREFIX}-{step}.", f"{PREFIX}-{step}_temp")):
                _remove(os.path.join(checkpoint_dir, name))
        kept = [s for s in steps(checkpoint_dir) if s != step]
        raise CheckpointWriteError(
            f"cannot write checkpoint {prefix}: {io_utils.write_failure(e)} (disk full or a "
            "file-size limit?); "
            + (f"the newest checkpoint kept is {PREFIX}-{kept[0]}" if kept else "none was kept")
        ) from None


def prune(checkpoint_dir: str, keep: int) -> list[str]:
    """Deletes all but the newest `keep` checkpoints (index first); returns their prefixes."""
    gone = []
    for step in steps(checkpoint_dir)[max(keep, 1) :]:
        prefix = prefix_of(checkpoint_dir, step)
        os.remove(prefix + ".index")  # unlisted from here on: a kill now leaves only debris
        for name in _names(checkpoint_dir):
            if name.startswith(os.path.basename(prefix) + ".data-"):
                os.remove(os.path.join(checkpoint_dir, name))
        gone.append(prefix)
    return gone
