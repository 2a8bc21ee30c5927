"""The design ceiling: the worker's own effects driver on aiokafka batches, no Faust.

The logic is ``bench/batched.py``'s: the same ``PartitionBatch`` the worker runs,
with the same hop and the same order per batch, without Faust's per-message path.
"""

from __future__ import annotations

from bench.batched import batched_pipeline
from bench.common import BOOTSTRAP
from bench.context import Run


async def run(run: Run) -> None:
    # it reads until it has handled ``limit`` inputs: never more than were preloaded
    limit = min(run.args.batched_events, len(run.messages))
    run.figures["batched"] = await batched_pipeline(
        run.settings(), run.rules, limit, run.work / "batched", BOOTSTRAP
    )
