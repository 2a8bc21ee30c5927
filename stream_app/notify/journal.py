"""The ids of the transitions already posted, kept on disk across restarts.

The notifier commits its Kafka offsets only after a post succeeded, so after
a crash it reads again what it had not committed; and the worker may publish
a transition twice (after its own crash, with the same ``transition_id``).
Both are dropped here. Each successful post appends its ids and fsyncs
before the offsets are committed: a kill -9 between the post and the append
can repeat that one post, nothing else. The file keeps the newest
``keep`` ids (rewritten when it doubles).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path


class Journal:
    def __init__(self, path: Path, keep: int = 200_000) -> None:
        self.path = path
        self.keep = keep
        self._ids: OrderedDict[str, None] = OrderedDict()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if line.endswith("\n"):  # a torn last line was never acknowledged
                        self._ids[line[:-1]] = None
        self._lines = len(self._ids)
        self._trim()
        self._file = path.open("a", encoding="utf-8")

    def __contains__(self, transition_id: object) -> bool:
        return transition_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, transition_ids: Iterable[str]) -> None:
        """Remember ``transition_ids`` durably (fsync) before returning."""
        new = [i for i in transition_ids if i not in self._ids]
        for transition_id in new:
            self._ids[transition_id] = None
        if not new:
            return
        self._file.write("".join(f"{i}\n" for i in new))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._lines += len(new)
        if self._lines > 2 * self.keep:
            self._file.close()
            self._trim(force=True)
            self._file = self.path.open("a", encoding="utf-8")

    def _trim(self, force: bool = False) -> None:
        while len(self._ids) > self.keep:
            self._ids.popitem(last=False)
        if force or self._lines > 2 * self.keep:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")
            os.replace(tmp, self.path)
            self._lines = len(self._ids)

    def close(self) -> None:
        self._file.close()
