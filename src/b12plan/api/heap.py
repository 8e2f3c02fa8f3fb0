"""The server's start-up heap is kept out of the cyclic garbage collector's full passes.

Why (issue 13, ADR 0066): a full (generation 2) collection walks every container object the
process holds, with the GIL held, so nothing else runs meanwhile. A served app holds a few
hundred thousand of them from start-up alone (FastAPI, SQLAlchemy, fhir.resources' models, the
knowledge base), and a large FHIR import allocates enough to set off several full collections:
each stopped every other request for 100-330 ms. Frozen objects (``gc.freeze``) are never walked,
so a full collection costs what the running requests and the import hold, not the whole heap.
Start-up objects live as long as the server anyway; the freeze is undone at shutdown so that a
process that starts and stops apps (the tests) leaves nothing behind.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def frozen_startup_heap(app: Any) -> AsyncIterator[None]:
    """An ASGI lifespan: freeze what start-up built, unfreeze at shutdown."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
