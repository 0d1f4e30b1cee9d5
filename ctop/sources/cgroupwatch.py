"""Finds the cgroups of one hierarchy every refresh without listing them all.

Where inotify works (any Linux cgroupfs), every known directory carries a watch and a refresh reads the queued
creations and removals with one read(2): a new directory is stat'ed, watched and listed, a removed one is dropped
with everything below it. Where it does not (the per-user instance limit reached, or the process's share of the
watch limit spent: see inotify.py), one stat per known cgroup finds the changes: cgroupfs (kernfs) gives a
directory ``st_nlink = 2 + its number of subdirectories``, so a directory is listed again only when that count
changed, when a known child vanished (its parent may hold a new one of another name) or when its inode changed
(recreated: everything below it is new). Trees where the link count does not say that (btrfs, some overlays used
for recorded trees) are then simply walked in full every time.

With ``writes``, the watches also report every write(2) to a file of a watched cgroup (a limit set, a process moved
in through cgroup.procs) and the kernel's change notices on files such as cgroup.events and memory.events: see
take_writes. A cgroup whose directory is watched can then keep its settings until they are written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import inotify
from .inotify import Inotify, WatchLimit

_GONE = inotify.IN_DELETE | inotify.IN_MOVED_FROM
_NEW = inotify.IN_CREATE | inotify.IN_MOVED_TO
_SELF_GONE = inotify.IN_IGNORED | inotify.IN_DELETE_SELF
# A write to one of these files changes what the cgroups below it get too (their effective CPU set).
_INHERITED_PREFIXES = ("cpuset.",)


@dataclass
class Writes:
    """Files written in a tree since the last take_writes: the cgroups (relative paths, "" for the root) whose own
    files were written, those whose whole subtree is affected, and whether any may have gone unseen."""

    cgroups: set[str] = field(default_factory=set)
    subtrees: set[str] = field(default_factory=set)
    lost: bool = False  # events were lost (queue overflow) or the watches are new: assume anything was written


class TreeWatch:
    """The directories under ``root`` down to ``max_depth`` (0 = the root only): relative path -> inode."""

    def __init__(self, root: str, max_depth: int | None = None, notify: bool = True, writes: bool = False) -> None:
        """``notify``: follow changes with inotify where it works (else, and with False, one stat per cgroup);
        ``writes``: note the files written too (see take_writes)."""
        self.root = root
        self.max_depth = max_depth
        self._known: dict[str, tuple[int, int]] = {}  # "" or "/a/b" -> (inode, st_nlink)
        self._nlink_counts_subdirs = True
        self._notify_wanted = notify
        self._inotify: Inotify | None = None
        self._watched: dict[int, str] = {}  # watch descriptor -> the directory it watches
        self._watch_of: dict[str, int] = {}  # and back
        self._mask = inotify.DIRECTORY_CHANGES | (inotify.IN_MODIFY if writes else 0)
        self._writes = Writes(lost=True)
        self.full_walks = 0
        self.listings = 0

    @property
    def notifying(self) -> bool:
        """True while inotify follows the tree (False: one stat per known cgroup each refresh)."""
        return self._inotify is not None

    def close(self) -> None:
        """Drop the inotify instance and its watches (paths() still works: it starts again)."""
        self._stop_notifying()
        self._known = {}

    def _stop_notifying(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._writes.lost = True  # writes from here until a new instance watches go unseen
        self._inotify = None
        self._watched, self._watch_of = {}, {}

    def covers(self, rel: str) -> bool:
        """True when a write to a file of cgroup ``rel`` would be reported: inotify watches it, or the tree has no
        such cgroup (as of the latest events; nothing to write to)."""
        return self._inotify is not None and (rel in self._watch_of or rel not in self._known)

    def poll(self) -> None:
        """Take in the events queued since the last call (paths() does this too); nothing without inotify."""
        if self._known and self._inotify is not None:
            self._apply_events(self._inotify)

    def take_writes(self) -> Writes:
        """The writes seen since the last call (as of the latest paths() or poll()), which start afresh."""
        writes, self._writes = self._writes, Writes()
        return writes

    def paths(self) -> dict[str, int]:
        """Every directory now present, as a cgroup path ("/" for the root) with its inode."""
        if not self._known:
            self._full_walk()
        elif self._inotify is not None:
            self._apply_events(self._inotify)
        elif self._nlink_counts_subdirs:
            self._update()
        else:
            self._full_walk()
        return {rel or "/": inode for rel, (inode, _nlink) in self._known.items()}

    def _at_depth_limit(self, rel: str) -> bool:
        return self.max_depth is not None and rel.count("/") >= self.max_depth

    def _full_walk(self) -> None:
        self.full_walks += 1
        self.close()  # a fresh instance: no event of an older tree is left to misread
        if self._notify_wanted:
            try:
                self._inotify = Inotify()
            except OSError:
                self._inotify = None
        self._nlink_counts_subdirs = True
        self._add_subtree("")

    def _watch(self, rel: str) -> bool:
        """Watch ``rel`` for subdirectories made and removed; False when it is gone. At the watch limit the tree
        goes back to one stat per cgroup for good."""
        if self._inotify is None or (rel and self._at_depth_limit(rel)):  # the root always: to see it go
            return True
        try:
            wd = self._inotify.add_watch(self.root + rel, self._mask)
        except WatchLimit:  # from now on this tree is followed by stats (a full walk if events were applied)
            self._stop_notifying()
            self._notify_wanted = False
            return True
        if wd is None:
            return False
        self._watched[wd] = rel
        self._watch_of[rel] = wd
        return True

    def _add_subtree(self, top: str) -> None:
        """Stat, watch, then list ``top`` and everything below it (a change after the stat or the watch is
        caught next time)."""
        stack = [top]
        while stack:
            rel = stack.pop()
            try:
                st = os.stat(self.root + rel)
            except OSError:
                continue
            if not self._watch(rel):
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

    def _forget(self, top: str) -> None:
        """Drop ``top`` and everything below it (their watches end with the directories)."""
        below = top + "/"
        for rel in [r for r in self._known if r == top or r.startswith(below)]:
            del self._known[rel]
            wd = self._watch_of.pop(rel, None)
            if wd is not None:
                self._watched.pop(wd, None)
                if self._inotify is not None:
                    self._inotify.forget(wd)

    def _apply_events(self, source: Inotify) -> None:
        for wd, mask, name in source.read_events():
            if mask & inotify.IN_Q_OVERFLOW:  # events were lost: look at everything again
                self._full_walk()
                return
            rel = self._watched.get(wd)
            if rel is None:  # a watch of a directory already dropped
                continue
            if mask & _SELF_GONE:  # the directory itself is gone
                if rel == "":
                    self._known = {}  # the root: walked again (and found or not) next time
                    return
                self._forget(rel)
                continue
            if not mask & inotify.IN_ISDIR:
                if mask & inotify.IN_MODIFY:  # a file of the cgroup was written (or the kernel noted a change)
                    self._writes.cgroups.add(rel)
                    if name.startswith(_INHERITED_PREFIXES):
                        self._writes.subtrees.add(rel)
                continue
            child = rel + "/" + name
            if mask & _GONE:
                self._forget(child)
            elif mask & _NEW and not self._at_depth_limit(rel):
                known = self._known.get(child)
                if known is not None:
                    try:
                        if os.stat(self.root + child).st_ino == known[0]:
                            continue  # already found when its parent was listed
                    except OSError:
                        pass
                    self._forget(child)
                self._add_subtree(child)
            if self._inotify is None:  # the watch limit was reached on the way: the stat path takes over from a
                self._full_walk()  # fresh walk (the link counts known no longer match the events applied)
                return

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
