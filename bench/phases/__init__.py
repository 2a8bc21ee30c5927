"""One module per phase of the benchmark; each has ``async def run(run: Run) -> None``."""
