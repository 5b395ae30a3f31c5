from __future__ import annotations

from datetime import UTC, datetime

from lighthouse_bridge.store.snapshots import decode, encode
from lighthouse_bridge.store.tree import FileEntry, Tree, apply

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_apply_create_modify_move_delete() -> None:
    tree = Tree()
    apply(tree, 1, "file_created", "a.py", 1, {"path": "a.py", "sha256": "s1", "size": 1}, "alice", T)
    apply(tree, 2, "file_modified", "a.py", 2, {"path": "a.py", "sha256": "s2", "size": 2}, "bob", T)
    assert tree.files["a.py"] == FileEntry("a.py", "s2", 2, "bob", 2, 2, T.isoformat())
    apply(
        tree,
        3,
        "file_moved",
        "a.py",
        3,
        {"path": "a.py", "new_path": "b.py", "sha256": "s2", "size": 2, "new_version": 1},
        "carol",
        T,
    )
    assert "a.py" not in tree.files
    assert tree.files["b.py"].version == 1 and tree.files["b.py"].sha256 == "s2"
    apply(tree, 4, "custom", "x", 1, None, None, T)
    assert tree.position == 4 and set(tree.files) == {"b.py"}
    apply(tree, 5, "file_deleted", "b.py", 2, {"path": "b.py"}, None, T)
    assert tree.files == {} and tree.position == 5


def test_snapshot_roundtrip() -> None:
    tree = Tree(7, {"a": FileEntry("a", "s", 3, None, 7, 2, T.isoformat())})
    back = decode(encode(tree))
    assert back == tree
