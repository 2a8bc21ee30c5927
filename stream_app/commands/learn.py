"""placeholder"""

from typing import Any


def add_command(sub: Any, formatter: Any) -> None:
    pass
