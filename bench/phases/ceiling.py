"""The design ceiling: the worker's stage functions on aiokafka batches, no Faust.

The logic is ``bench/batched.py``'s; it imports ``stream_app.pipeline``'s stage
functions, so when the wiring changes under it the phase reports the import
error and the run goes on.
"""

from __future__ import annotations

from bench.common import BOOTSTRAP
from bench.context import Run, note


async def run(run: Run) -> None:
    try:
        from bench.batched import batched_pipeline  # noqa: PLC0415
    except ImportError as exc:
        run.figures["batched"] = {"error": f"{type(exc).__name__}: {exc}"}
        note(run, f"design ceiling not measured: bench/batched.py does not import ({exc})")
        return
    # it reads until it has handled ``limit`` inputs: never more than were preloaded
    limit = min(run.args.batched_events, len(run.messages))
    run.figures["batched"] = await batched_pipeline(
        run.settings(), run.rules, limit, run.work / "batched", BOOTSTRAP
    )
