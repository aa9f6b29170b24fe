"""The file watch of `pack watch` (real inotify, no engine): batches, temporaries, start-up."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from packager.devloop.watcher import FileWatcher, net_edits

ADDED, MODIFIED, DELETED = 1, 2, 3


def test_a_temporary_created_and_removed_within_a_batch_is_no_edit(tmp_path: Path) -> None:
    kept = tmp_path / "model.py"
    kept.write_text("x")
    changes = [(ADDED, str(tmp_path / "sedAb12")), (DELETED, str(tmp_path / "sedAb12")), (MODIFIED, str(kept)),
               (DELETED, str(tmp_path / "old.py"))]
    assert net_edits(changes, ADDED) == {kept, tmp_path / "old.py"}


@pytest.fixture
def watcher(tmp_path: Path):
    w = FileWatcher((tmp_path,), lambda p: p.name.endswith(".swp")).start()
    yield w
    w.stop()


def test_files_saved_together_arrive_as_one_batch(tmp_path: Path, watcher: FileWatcher) -> None:
    # The watch is set up when start() returns: an edit right after it is seen.
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".a.py.swp").write_text("swap")
    batch = watcher.batches.get(timeout=10)
    assert batch == {tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"}
    with pytest.raises(queue.Empty):
        watcher.batches.get(timeout=0.5)


def test_a_stopped_watcher_ends_its_thread(tmp_path: Path) -> None:
    w = FileWatcher((tmp_path,), lambda p: False).start()
    w.stop()
    assert not w._thread.is_alive()
    (tmp_path / "late.py").write_text("x")
    with pytest.raises(queue.Empty):
        w.batches.get(timeout=0.5)
