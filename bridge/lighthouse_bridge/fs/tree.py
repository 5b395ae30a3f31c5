"""A project tree (files by path, directories derived from paths) and the inode table of the mount."""

from __future__ import annotations

from collections.abc import Iterable

from .source import FileMeta

ROOT_INO = 1
Key = tuple[str, str, str]  # (area, view, relative path); the mount root is ("", "", "")
ROOT_KEY: Key = ("", "", "")


def split(path: str) -> tuple[str, str]:
    """'a/b/c' -> ('a/b', 'c'); 'c' -> ('', 'c')."""
    parent, _, name = path.rpartition("/")
    return parent, name


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def parent_key(key: Key) -> Key | None:
    """The directory holding `key`; None for the mount root."""
    area, view, rel = key
    if rel:
        return (area, view, split(rel)[0])
    if view:
        return (area, "", "")
    return ROOT_KEY if area else None


class Tree:
    """Files by path; directories exist while they hold something, or while explicitly kept (local mkdir)."""

    def __init__(self, files: Iterable[FileMeta] = (), position: int = 0) -> None:
        self.position = position
        self.files: dict[str, FileMeta] = {}
        self.dirs: dict[str, dict[str, bool]] = {"": {}}  # dir -> {child name: is_dir}
        self.kept: set[str] = set()
        for meta in files:
            self.put(meta)

    def kind(self, path: str) -> str | None:
        if path in self.files:
            return "file"
        if path in self.dirs:
            return "dir"
        return None

    def children(self, path: str) -> dict[str, bool]:
        return self.dirs.get(path, {})

    def subdir_count(self, path: str) -> int:
        return sum(1 for is_dir in self.dirs.get(path, {}).values() if is_dir)

    def put(self, meta: FileMeta) -> list[str]:
        """Add or replace a file; returns the directories that had to be created."""
        parent, name = split(meta.path)
        created = self._ensure_dir(parent)
        self.dirs[parent][name] = False
        self.files[meta.path] = meta
        return created

    def remove(self, path: str) -> list[str]:
        """Remove a file; returns the directories that became empty and went away (deepest first)."""
        if self.files.pop(path, None) is None:
            return []
        parent, name = split(path)
        self.dirs[parent].pop(name, None)
        return self._prune(parent)

    def mkdir(self, path: str) -> None:
        self._ensure_dir(path)
        self.kept.add(path)

    def rmdir(self, path: str) -> None:
        self.kept.discard(path)
        if not self.dirs.get(path):
            self._drop_dir(path)
            self._prune(split(path)[0])

    def files_under(self, path: str) -> list[str]:
        prefix = f"{path}/" if path else ""
        return sorted(p for p in self.files if p.startswith(prefix))

    def dirs_under(self, path: str) -> list[str]:
        prefix = f"{path}/"
        return sorted(d for d in self.dirs if d == path or d.startswith(prefix))

    def _ensure_dir(self, path: str) -> list[str]:
        if path in self.dirs:
            return []
        parent, name = split(path)
        created = self._ensure_dir(parent)
        self.dirs[parent][name] = True
        self.dirs[path] = {}
        created.append(path)
        return created

    def _drop_dir(self, path: str) -> None:
        if path == "" or path not in self.dirs:
            return
        del self.dirs[path]
        parent, name = split(path)
        self.dirs[parent].pop(name, None)

    def _prune(self, path: str) -> list[str]:
        gone = []
        while path and not self.dirs.get(path) and path not in self.kept:
            self._drop_dir(path)
            gone.append(path)
            path = split(path)[0]
        return gone


class Inodes:
    """Stable inode numbers per key while the kernel knows them (lookup counts), never reused."""

    def __init__(self) -> None:
        self._by_key: dict[Key, int] = {ROOT_KEY: ROOT_INO}
        self._keys: dict[int, Key] = {ROOT_INO: ROOT_KEY}
        self._lookups: dict[int, int] = {}
        self._next = ROOT_INO + 1
        self.epoch = 0  # bumped whenever a key loses its inode number: listings cached with numbers go stale

    def __len__(self) -> int:
        return len(self._keys)

    def ino(self, key: Key) -> int:
        ino = self._by_key.get(key)
        if ino is None:
            ino = self._next
            self._next += 1
            self._by_key[key] = ino
            self._keys[ino] = key
        return ino

    def known(self, key: Key) -> int | None:
        return self._by_key.get(key)

    def key(self, ino: int) -> Key | None:
        return self._keys.get(ino)

    def in_kernel(self, ino: int) -> bool:
        """Whether the kernel holds this inode (a lookup or a listed entry it has not forgotten)."""
        return ino in self._lookups

    def ref(self, ino: int, n: int = 1) -> None:
        self._lookups[ino] = self._lookups.get(ino, 0) + n

    def forget(self, ino: int, n: int) -> Key | None:
        """Drop `n` lookups; returns the key whose inode number went away with the last one, if any."""
        left = self._lookups.get(ino, 0) - n
        if left > 0:
            self._lookups[ino] = left
            return None
        self._lookups.pop(ino, None)
        if ino != ROOT_INO:
            key = self._keys.pop(ino, None)
            if key is not None and self._by_key.get(key) == ino:
                del self._by_key[key]
                self.epoch += 1
                return key
        return None

    def rekey(self, old: Key, new: Key) -> None:
        """A local rename keeps the kernel's inode: move the mapping (and everything under a directory)."""
        area, view, rel = old
        prefix = f"{rel}/"
        moves = [
            k
            for k in self._by_key
            if k[0] == area and k[1] == view and (k[2] == rel or k[2].startswith(prefix))
        ]
        self.epoch += 1
        for k in moves:
            ino = self._by_key.pop(k)
            nk = (new[0], new[1], new[2] + k[2][len(rel):])
            self._by_key.pop(nk, None)
            self._by_key[nk] = ino
            self._keys[ino] = nk
