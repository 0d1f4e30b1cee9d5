"""Finds the cgroups of one hierarchy every refresh with one stat per known cgroup instead of listing them all.

cgroupfs (kernfs) gives a directory ``st_nlink = 2 + its number of subdirectories``. A directory is listed again
only when that count changed, when a known child vanished (its parent may hold a new one of another name) or
when its inode changed (recreated: everything below it is new). Trees where the link count does not say that
(btrfs, some overlays used for recorded trees) are simply walked in full every time.
"""

from __future__ import annotations

import os


class TreeWatch:
    """The directories under ``root`` down to ``max_depth`` (0 = the root only): relative path -> inode."""

    def __init__(self, root: str, max_depth: int | None = None) -> None:
        self.root = root
        self.max_depth = max_depth
        self._known: dict[str, tuple[int, int]] = {}  # "" or "/a/b" -> (inode, st_nlink)
        self._nlink_counts_subdirs = True
        self.full_walks = 0
        self.listings = 0

    def paths(self) -> dict[str, int]:
        """Every directory now present, as a cgroup path ("/" for the root) with its inode."""
        if not self._known or not self._nlink_counts_subdirs:
            self._full_walk()
        else:
            self._update()
        return {rel or "/": inode for rel, (inode, _nlink) in self._known.items()}

    def _at_depth_limit(self, rel: str) -> bool:
        return self.max_depth is not None and rel.count("/") >= self.max_depth

    def _full_walk(self) -> None:
        self.full_walks += 1
        self._known = {}
        self._nlink_counts_subdirs = True
        self._add_subtree("")

    def _add_subtree(self, top: str) -> None:
        """Stat then list ``top`` and everything below it (stat first: a change after it is caught next time)."""
        stack = [top]
        while stack:
            rel = stack.pop()
            try:
                st = os.stat(self.root + rel)
            except OSError:
                continue
            self._known[rel] = (st.st_ino, st.st_nlink)
            children = self._list(rel)
            if children is None:
                continue
            if not self._at_depth_limit(rel) and st.st_nlink != 2 + len(children):
                self._nlink_counts_subdirs = False
            stack.extend(child for child in children if child not in self._known)

    def _list(self, rel: str) -> list[str] | None:
        """Subdirectory paths of ``rel`` (within the depth limit); None when it cannot be listed."""
        if self._at_depth_limit(rel):
            return []
        self.listings += 1
        try:
            with os.scandir(self.root + rel) as entries:
                return [rel + "/" + e.name for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            return None

    def _update(self) -> None:
        relist: list[str] = []
        alive: dict[str, tuple[int, int]] = {}
        for rel, (inode, nlink) in self._known.items():
            try:
                st = os.stat(self.root + rel)
            except OSError:
                if rel:
                    relist.append(rel.rsplit("/", 1)[0])  # the parent may hold a new child of another name
                continue
            if st.st_ino != inode:
                relist.append(rel)  # recreated: its old children are gone, any new ones are found below
            elif st.st_nlink != nlink:
                relist.append(rel)
            alive[rel] = (st.st_ino, st.st_nlink)
        self._known = alive
        if not relist:
            return
        if "" not in alive:  # the root itself is gone or new: start again
            self._full_walk()
            return
        for rel in dict.fromkeys(relist):  # vanished children already failed their stat above
            if rel not in alive:
                continue
            for child in self._list(rel) or ():
                if child not in self._known:
                    self._add_subtree(child)
