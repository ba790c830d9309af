"""A torn last journal line of any length (prompts have no length limit) is cut when the journal is opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.ledger.journal import Journal, _cut_torn_tail
from pipeline.ledger.replay import SUBMITTED, UNKNOWN, read_events, replay

PROMPT_CHARS = 200_000  # a long prompt: its intent line (spec and request) is about 400 KB


def _event_line(**event: object) -> bytes:
    return (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _intent(key: str, prompt: str) -> bytes:
    return _event_line(t=1.0, ev="intent", key=key, attempt=1, spec={"key": key, "prompt": prompt},
                       request={"prompt": prompt})


@pytest.mark.parametrize(("kept_bytes", "torn_bytes"), [
    (0, 1), (0, 65_535), (0, 65_536), (0, 65_537), (0, 200_000), (0, 1_000_000),
    (100, 0), (100, 1), (100, 65_535), (100, 65_536), (100, 65_537), (100, 131_072), (100, 200_000),
    (65_536, 65_536), (70_000, 0), (70_000, 3), (70_000, 200_000), (300_000, 1_000_000),
])
def test_a_torn_tail_of_any_length_is_cut_back_to_the_last_newline(tmp_path: Path, kept_bytes: int,
                                                                    torn_bytes: int) -> None:
    """Whatever the lengths of the complete lines and of the torn one, exactly the torn bytes are cut."""
    path = tmp_path / "ledger.jsonl"
    kept = b"".join(b"x" * (size - 1) + b"\n" for size in (kept_bytes // 2, kept_bytes - kept_bytes // 2) if size)
    path.write_bytes(kept + b"y" * torn_bytes)
    assert _cut_torn_tail(path) == torn_bytes
    assert path.read_bytes() == kept


async def test_a_torn_intent_with_a_200k_char_prompt_is_cut_and_the_next_event_stands_alone(tmp_path: Path) -> None:
    """A crash mid-write of a 400 KB intent (prompt in spec and request): reopening cuts it, the next write
    stands alone, replay sees every event."""
    path = tmp_path / "ledger.jsonl"
    journal = Journal(path)
    await journal.write("run", name="t", job_count=2, pid=1)
    await journal.write("intent", key="k1", attempt=1, spec={"key": "k1", "prompt": "short"})
    await journal.write("submitted", key="k1", job_id="job_1")
    journal.close()
    complete = path.read_bytes()
    torn = _intent("k2", "p" * PROMPT_CHARS)[:-2]  # the crash came before its last bytes and the newline
    with path.open("ab") as handle:
        handle.write(torn)
    assert len(torn) > PROMPT_CHARS
    assert [e["ev"] for e in read_events(path)] == ["run", "intent", "submitted"]  # the torn line is skipped

    journal = Journal(path)
    assert path.read_bytes() == complete and journal.state.torn_lines == 1
    await journal.write("intent", key="k2", attempt=1, spec={"key": "k2", "prompt": "p" * PROMPT_CHARS})
    journal.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and json.loads(lines[-2])["key"] == "k2"
    state = replay(path)
    assert state.jobs["k1"].state == SUBMITTED and state.jobs["k1"].job_id == "job_1"
    assert state.jobs["k2"].state == UNKNOWN and len(state.jobs["k2"].spec["prompt"]) == PROMPT_CHARS


async def test_a_journal_that_is_one_torn_line_over_64_kib_is_cut_to_empty(tmp_path: Path) -> None:
    """The first event of a run was torn (no newline anywhere): the file is cut to nothing, the next write is line 1."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(_intent("k1", "p" * PROMPT_CHARS)[:-1])
    assert path.stat().st_size > 65_536
    journal = Journal(path)
    assert path.stat().st_size == 0 and journal.state.torn_lines == 1 and not journal.state.jobs
    await journal.write("intent", key="k1", attempt=1, spec={"key": "k1", "prompt": "again"})
    journal.close()
    assert [e["ev"] for e in read_events(path)] == ["intent"]
    assert replay(path).jobs["k1"].state == UNKNOWN
