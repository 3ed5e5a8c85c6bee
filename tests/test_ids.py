from __future__ import annotations

import os
import random
import uuid

from pando_core.ids import new_id


def test_ids_are_version_4_uuid_strings_and_distinct():
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_seeding_the_global_random_does_not_repeat_ids():
    random.seed(1234)
    first = new_id()
    random.seed(1234)
    assert new_id() != first


def test_a_forked_child_does_not_repeat_its_parents_ids():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and leave at once
        os.write(write_end, new_id().encode())
        os._exit(0)
    os.close(write_end)
    parent_next = new_id()
    with os.fdopen(read_end, "rb") as pipe:
        child_next = pipe.read().decode()
    os.waitpid(pid, 0)
    assert uuid.UUID(child_next).version == 4 and child_next != parent_next
