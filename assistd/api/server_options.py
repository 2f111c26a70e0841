"""How uvicorn serves the app: how shutting down ends."""

from __future__ import annotations

import math
from typing import Any

from assistd.settings import Settings

KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Options for uvicorn.run/Config. On SIGTERM whatever is still open after the
    shutdown deadline is cut off (streams end at once anyway, see assistd.api.draining)."""
    return {
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": math.ceil(settings.shutdown_timeout_s),
    }
