"""The caches a status reads through: a status file is read again whenever
it may have changed, and only then; the committed lock whenever the meta
flake's main moved."""

from __future__ import annotations

import json
import os

from hive_tui.host import rowcache
from hive_tui.host.rowcache import StatusFiles

from .helpers import agent_files, propose


def counting_reads(monkeypatch) -> list:
    reads: list = []
    real = rowcache.read_json

    def read_json(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(rowcache, "read_json", read_json)
    return reads


def test_a_status_file_is_read_again_only_when_it_moved(tmp_path, monkeypatch):
    reads = counting_reads(monkeypatch)
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"text": "one"}))
    files = StatusFiles(racy_ns=0)
    assert files.read(path) == {"text": "one"}
    assert files.read(path) == {"text": "one"} and len(reads) == 1, "unchanged: read from the cache"

    path.write_text(json.dumps({"text": "two, longer"}))
    assert files.read(path) == {"text": "two, longer"}
    tmp = tmp_path / "next"
    tmp.write_text(json.dumps({"text": "three"}))
    os.replace(tmp, path)
    assert files.read(path) == {"text": "three"}
    assert len(reads) == 3

    path.unlink()
    os.mkfifo(path)
    assert files.read(path) is None
    path.unlink()
    assert files.read(path) is None
    path.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text(json.dumps({"text": "not the agent's"}))
    assert files.read(path) is None


def test_a_file_rewritten_within_one_tick_of_the_clock_is_read_again(tmp_path, monkeypatch):
    # Same size, and possibly the same times: only its age tells the cache may be stale.
    reads = counting_reads(monkeypatch)
    path = tmp_path / "status.json"
    files = StatusFiles()
    for text in ("busy 1", "busy 2", "busy 3"):
        with open(path, "w") as f:
            f.write(json.dumps({"text": text}))
        assert files.read(path) == {"text": text}
    assert len(reads) == 3


def test_the_status_follows_a_deploy_through_the_cached_lock(engine):
    engine.install_agent("alpha", agent_files())
    before = engine.agent_status("alpha").deployed_sha
    propose(engine, "alpha", {"notes.txt": b"one\n"})
    assert engine.status()[0].deployed_sha == before
    engine.approve(engine.pending()[0].id)
    after = engine.status()[0]
    assert after.deployed_sha != before and not after.needs_update
