"""What a served engine pushes on its own: an agent's row whenever one of its
inputs changes (the status file its agent writes, the model a deploy brings,
its run state, its action in flight, its pause marker), and what it logs as
it stops."""

from __future__ import annotations

from .helpers import wait_for


def test_serve_logs_a_final_line_once_it_has_stopped(served):
    assert served.terminate() == 0
    lines = served.log.read_text().splitlines()
    waiting = lines.index("hive-tui serve: shutting down: waiting for the work in flight")
    assert lines[-1] == "hive-tui serve: stopped" and lines.index(lines[-1]) > waiting
    assert not served.sock.exists()
