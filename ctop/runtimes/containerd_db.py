"""The image of a containerd container from containerd's own metadata (meta.db, bbolt) without its daemon.

A bundle directory (``<state>/io.containerd.runtime.v2.task/<namespace>/<id>``) links ``work`` to
``<root>/io.containerd.runtime.v2.task/<namespace>/<id>``; the root holds ``io.containerd.metadata.v1.bolt/meta.db``,
whose bucket ``v1/<namespace>/containers/<id>`` keeps the key ``image``.
"""

from __future__ import annotations

import os
import struct

from . import boltdb

META_DB = os.path.join("io.containerd.metadata.v1.bolt", "meta.db")
DEFAULT_ROOTS = ("/var/lib/containerd", "/var/lib/docker/containerd/daemon")


def meta_db_of(bundle: str) -> str | None:
    """containerd's meta.db for the task bundle directory ``bundle`` (through its ``work`` link); None if unknown."""
    try:
        work = os.readlink(os.path.join(bundle, "work"))
    except OSError:
        return None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.normpath(work))))
    path = os.path.join(root, META_DB)
    return path if os.path.isfile(path) else None


def container_image(meta_db: str, namespace: str, container_id: str) -> str:
    """The image reference containerd keeps for one container; "" when the database or the key is missing."""
    opened = boltdb.open_bolt(meta_db)
    if opened is None:
        return ""
    root, data = opened
    try:
        bucket: boltdb.Bucket | None = root
        for key in (b"v1", namespace.encode(), b"containers", container_id.encode()):
            bucket = bucket.bucket(key) if bucket is not None else None
        image = bucket.get(b"image") if bucket is not None else None
        return image.decode("utf-8", "replace") if image else ""
    except (boltdb.BoltError, struct.error, ValueError, IndexError):
        return ""
    finally:
        data.close()
