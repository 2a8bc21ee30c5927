"""The browser the dashboard's tests drive: Debian's ``chromium``, installed with apt-get
where missing (as ``devstack`` installs ``redis-server``).

Playwright for Python drives it by its path; Playwright never downloads a
browser of its own here (``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1``, and no
``playwright install``): the browser is the distribution's, updated with it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tools.devstack import apt_install, say

#: Where Debian puts it; ``LEADSTREAM_CHROMIUM`` names another.
DEFAULT = "/usr/bin/chromium"

#: Flags that work on these machines (no sandbox as root, no GPU, nothing phoning home).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    named = os.environ.get("LEADSTREAM_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or (DEFAULT if Path(DEFAULT).exists() else None)


def ensure_chromium() -> str:
    """The browser's path, after installing Debian's ``chromium`` if it is missing."""
    found = chromium_path()
    if found is None:
        apt_install("chromium")
        found = chromium_path()
    if found is None:
        raise SystemExit("chromium is still missing after apt-get install chromium")
    say(f"chromium: {found}")
    return found
