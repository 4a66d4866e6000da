"""Raw-event data sets in the raw-event contract (docs/contracts.md), written as
``<output>/dt=YYYY-MM-DD/part-*.jsonl[.gz]``.

- :mod:`tools.datagen.clickstream`: seeded synthetic clickstream with latent taste groups and a known,
  exactly counted share of bad lines (``_manifest.json`` holds the expected parse_logs outcome).
- :mod:`tools.datagen.movielens`: MovieLens-100K ratings (from the ``recbole==1.2.1`` wheel) as raw events.

Both replace their output folder on rerun (never append) and write nothing else but the download cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

MANIFEST_NAME = "_manifest.json"


@contextlib.contextmanager
def staged_output(output_dir: Union[str, Path]) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``output_dir`` as a whole.

    Writing next to the target and renaming means a crash never leaves a half-written data set under
    ``output_dir``, and a rerun never mixes with the previous run's day folders. To avoid wiping a folder
    by mistake, an existing non-empty ``output_dir`` is only replaced if it holds a ``_manifest.json``.
    """
    out = Path(output_dir).absolute()
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"output {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
            raise ValueError(
                f"refusing to replace {out}: not empty and no {MANIFEST_NAME} (not a datagen output)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    # A dot-prefixed sibling: Spark/Hadoop ignore hidden paths if the parent folder is ever read as input.
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(stage, 0o755)  # mkdtemp makes it 0700; the result should look like any other folder
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    stage.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
