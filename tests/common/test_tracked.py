"""TrackedDict: which keys a checkpoint must save again."""

from __future__ import annotations

import pickle

from common.tracked import TrackedDict


def fresh() -> TrackedDict[str, list[int]]:
    tracked: TrackedDict[str, list[int]] = TrackedDict({"a": [1], "b": [2], "c": [3]})
    assert tracked.take_changed() == ({"a", "b", "c"}, set())  # new: every entry is unsaved
    return tracked


def test_writes_and_reads_by_key_are_marked() -> None:
    tracked = fresh()
    tracked["d"] = [4]
    del tracked["a"]
    tracked.get("b")
    tracked.get("missing")  # absent: nothing to change in place
    assert tracked.take_changed() == ({"d", "a", "b"}, {"a"})  # deleted: if set again, it moves to the end
    tracked["c"].append(30)
    tracked.setdefault("e", []).append(5)
    tracked.pop("d")
    tracked.pop("never", None)
    assert tracked.take_changed() == ({"c", "e", "d", "never"}, {"d", "never"})
    tracked.update({"f": [6]}, g=[7])
    tracked |= {"h": [8]}
    assert tracked.take_changed() == ({"f", "g", "h"}, set())
    key, _ = tracked.popitem()
    assert tracked.take_changed() == ({key}, {key})
    remaining = set(tracked)
    tracked.clear()
    assert tracked.take_changed() == (remaining, remaining) and tracked == {}


def test_walks_and_membership_mark_nothing_until_touched() -> None:
    tracked = fresh()
    assert "a" in tracked and len(tracked) == 3
    for value in tracked.values():
        value.append(0)
    assert list(tracked.items())[0][0] == "a"
    assert tracked.take_changed() == (set(), set())
    tracked.touch("b")
    assert tracked.take_changed() == ({"b"}, set())
    del tracked["c"]
    changed, moved = tracked.take_changed()
    tracked["d"] = [4]
    tracked.give_back(changed, moved)  # a checkpoint failed after taking the marks: they stand again
    assert tracked.take_changed() == ({"c", "d"}, {"c"})
    assert tracked.take_changed() == (set(), set())


def test_pickled_whole_it_loads_as_a_new_mapping_with_every_entry_unsaved() -> None:
    tracked = fresh()
    copy = pickle.loads(pickle.dumps(tracked))
    assert isinstance(copy, TrackedDict) and copy == tracked and copy.uid != tracked.uid
    assert copy.take_changed() == ({"a", "b", "c"}, set())
    restored = TrackedDict.restored("abc", {"x": 1})
    assert restored.uid == "abc" and restored.take_changed() == (set(), set())
