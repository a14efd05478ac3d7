"""Full garbage collections kept short: what lives for the session is frozen out of them (`gc.freeze`).

CPython's full (generation 2) collection walks every tracked object. While a 10,000-study folder is
indexed, the window's process holds the app's modules plus the growing rows and headers, and each
full collection held the GIL for 70-115 ms at an unpredictable moment (on whichever thread allocated):
the worklist's longest stalls while it filled, once the model ran in its own process (docs/benchmarks.md).
Freezing moves every object alive now into a generation that collections skip; it is a list splice,
cheap enough for each batch of rows. Frozen objects are still freed when their last reference goes;
only reference cycles among them wait until `release` (a closed session), which collects them once.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """The objects alive now (the app's own, a session's rows and cases) live on: leave them out of
    later full collections."""
    gc.freeze()


def release() -> None:
    """A session closed: its frozen objects may be garbage; collect them now (one pause, at the user's
    action), then settle what is left."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
