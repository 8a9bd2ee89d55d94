"""Where things live: bundled assets inside the package, user data under the platform data directory.

Nothing here touches the network. CYBERSLM_HOME overrides the user data directory (tests use it).
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"


def user_dir() -> Path:
    """The user's cyberslm data directory (knowledge store, caches, runs)."""
    home = os.environ.get("CYBERSLM_HOME")
    if home:
        path = Path(home)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("cyberslm", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = user_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
