"""Two processes asking for the same synthetic set at once (DDP ranks, parallel runs): one writes it, the other
waits and reuses it, so no process swaps a new copy in under one that is reading."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from rootseg.synthetic import dataset


def _ask(root: str, calls: str) -> None:
    write = dataset.write_dataset

    def slow_write(*args, **kwargs):
        with open(calls, "a") as f:
            f.write("write\n")
        time.sleep(1.0)  # the other process asks meanwhile
        return write(*args, **kwargs)

    dataset.write_dataset = slow_write
    out = dataset.ensure_dataset(root, 2, (32, 32), 0)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["synth_0000.png", "synth_0001.png"]


def test_a_set_asked_for_by_two_processes_at_once_is_written_once(tmp_path):
    root, calls = tmp_path / "sets" / "n2", tmp_path / "calls.txt"
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_ask, args=(str(root), str(calls))) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    assert calls.read_text().splitlines() == ["write"]
    assert dataset._manifest_matches(Path(root), dataset._manifest(2, (32, 32), 0, 0.2, 0.2))
