"""How the process that serves the app runs Python: two settings that keep any request from
waiting long for the GIL while another request keeps a thread busy (issue 13, ADR 0069).

1. **The start-up heap is frozen** (``gc.freeze``). A full (generation 2) collection walks every
   container object the process holds, with the GIL held, so nothing else runs meanwhile. A
   served app holds about 200,000 from start-up alone (FastAPI, SQLAlchemy, fhir.resources'
   models, the knowledge base), and a large FHIR import allocates enough to set off several full
   collections: each stopped every other request for 150-330 ms. Frozen objects are never
   walked, so a full collection costs what the running requests hold, not the whole heap.
2. **The GIL switch interval is 1 ms** (``sys.setswitchinterval``; Python's default is 5 ms).
   While a thread computes (an import, an export), the event loop gets the GIL back only when
   it has waited one interval, and it needs it several times per request. Measured during a
   3,000-entry import: timed requests p95 21-33 ms and max 48-61 ms at 1 ms, against p95
   74-102 ms and max 125-163 ms at 5 ms (alternate runs, load average about 2).

Both are undone at shutdown, so a process that starts and stops apps (the tests) is left as it
was.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

SWITCH_INTERVAL_SECONDS = 0.001


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[None]:
    """An ASGI lifespan: freeze what start-up built and shorten the switch interval."""
    interval = sys.getswitchinterval()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.unfreeze()
