"""The records table's RocksDB: an erased record leaves no file that holds it."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from stream_app.worker.records import forget

SECRET = b"jane.doe@acme.com"


def files_with(path: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_file() and needle in p.read_bytes())


def test_forget_rewrites_the_write_ahead_log_and_the_sst_files_that_held_a_deleted_key(
    tmp_path: Path,
) -> None:
    db = Rdict(str(tmp_path / "db"), Options(raw_mode=True))
    try:
        for n in range(3000):
            db[b"k%06d" % n] = b"v" * 100
        db[b"L1"] = b"old: " + SECRET
        db.flush(True)  # the first value in an SST file
        db[b"L1"] = b"newer: " + SECRET  # the second in the memtable and the log
        batch = WriteBatch(raw_mode=True)
        batch.delete(b"L1")
        db.write(batch)
        held = files_with(tmp_path / "db", SECRET)
        assert any(n.endswith(".sst") for n in held) and any(n.endswith(".log") for n in held)
        forget(db, [b"L1"])
        assert files_with(tmp_path / "db", SECRET) == []
        # the key itself may stay in the MANIFEST, as an old file's boundary, until the
        # MANIFEST is rewritten (the next open): keys only, never a value
        assert all(n.startswith("MANIFEST-") for n in files_with(tmp_path / "db", b"L1"))
        assert db.get(b"k000001") == b"v" * 100 and db.get(b"L1") is None
    finally:
        db.close()
