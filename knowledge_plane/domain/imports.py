"""Importing a library without the optional heavyweights it would pull in for features we do not use.

spaCy's thinc imports torch whenever it is installed, and Docling imports transformers (hence torch)
for a type annotation of its vision-language options: about 1.5–2 s and hundreds of MB for a build
that embeds with ONNX Runtime and converts Markdown or HTML. Both libraries have a fallback for the
heavyweight being absent; ``hidden`` makes it absent while they are imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden(*modules: str) -> Iterator[None]:
    """Within the block, ``import <module>`` raises ImportError for each of ``modules`` not imported
    yet (one already imported stays visible: hiding it would gain nothing); visible again after."""
    hide = [name for name in modules if name not in sys.modules]
    for name in hide:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "known absent"
    try:
        yield
    finally:
        for name in hide:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
