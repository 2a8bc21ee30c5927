"""The state one run of the harness shares between its phases."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import RESULTS, Kafka, Message, Result, say
from bench.procs import BenchProcess, bench_worker
from bench.topology import DUE_INDEX, watched
from stream_app.config import Settings
from stream_app.scoring.rules import Rules


@dataclass
class Run:
    """One run: its ids, the preloaded traffic, the pure core's expectations, the worker.

    Topic prefixes start with ``bench<run id>`` and app ids with ``bench-<run id>``, so
    the run's topics (Faust's changelogs included) are found and dropped at the end.
    """

    args: argparse.Namespace
    result: Result
    rules: Rules
    run_id: str
    work: Path
    kafka: Kafka
    messages: list[Message] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)  # transition ids of the pure core
    replay: Any = None  # the pure core's Replay, until the state phase took its records
    worker: BenchProcess | None = None  # the keyed worker, kept for latency and recovery
    logs: list[Path] = field(default_factory=list)

    @property
    def figures(self) -> dict[str, Any]:
        return self.result.figures

    def settings(self, tag: str = "k") -> Settings:
        """Topics ``bench<id><tag>.``, app ``bench-<id><tag>`` (k: the keyed preload)."""
        return Settings(topic_prefix=self.prefix(tag), app_id=self.app_id(tag))

    def prefix(self, tag: str = "k") -> str:
        return f"bench{self.run_id}{tag}."

    def app_id(self, tag: str = "k") -> str:
        return f"bench-{self.run_id}{tag}"

    def redis_prefix(self, tag: str = "k") -> str:
        return f"ls:bench:{self.run_id}{tag}:"

    def log(self, name: str) -> Path:
        path = RESULTS / f"{name}-{self.run_id}.log.tmp"
        self.logs.append(path)
        return path

    def new_worker(
        self, tag: str = "k", data: str = "", profile: Path | None = None, instance: int = 1
    ) -> BenchProcess:
        return bench_worker(
            self.prefix(tag),
            self.app_id(tag),
            self.redis_prefix(tag),
            self.work / f"worker-{tag}{data}",
            f"{self.app_id(tag)}-{instance}",
            self.log(f"worker-{tag}"),
            profile,
        )

    async def keyed_worker(self) -> BenchProcess:
        """The keyed worker, running, warm and caught up with everything sent so far (the
        throughput phase leaves it stopped; a ``--phases`` subset may not have run it)."""
        if self.worker is None:
            self.worker = self.new_worker()
        if not self.worker.running:
            self.worker.start()
            await self.worker.wait_ready_async(300)  # its own /ready: restored and assigned
            # warm-up: a restarted worker rebuilds its decay index from every record first
            with contextlib.suppress(RuntimeError):
                await self.worker.wait_for_log(DUE_INDEX, limit_s=120)
            await self.kafka.wait_caught_up(watched(self.settings()), 7200, desc="catch up")
        return self.worker

    def stop_workers(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def note(run: Run, text: str) -> None:
    run.result.notes.append(text)
    say(f"  note: {text}")
