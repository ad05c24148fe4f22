"""A local filesystem for pyarrow/Ray writers that publishes each file atomically (temp name, then rename).

S3 PUTs are already atomic per object; on a local disk a killed writer would otherwise leave a truncated
Parquet file where readers look for records. Temp names start with '.', which dataset discovery ignores.
"""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pyarrow.fs as pafs


class _PublishOnClose:
    """Python file object: writes to a hidden temp file beside `path`, renames it into place on close."""

    def __init__(self, path: str):
        head, tail = os.path.split(path)
        self.path = path
        self.tmp = os.path.join(head, f".{tail}.{uuid.uuid4().hex[:8]}.tmp")
        os.makedirs(head, exist_ok=True)
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
        self.closed = False

    def write(self, data) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def tell(self) -> int:
        return self._f.tell()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)


class AtomicLocalHandler(pafs.FileSystemHandler):
    """Delegates to the local filesystem; only new output streams are published atomically."""

    def __init__(self):
        self._local = pafs.LocalFileSystem()

    def __eq__(self, other) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other) -> bool:
        return not self == other

    def __reduce__(self):
        return (AtomicLocalHandler, ())

    def get_type_name(self) -> str:
        return "atomic-local"

    def normalize_path(self, path: str) -> str:
        return self._local.normalize_path(path)

    def get_file_info(self, paths):
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self._local.get_file_info(selector)

    def create_dir(self, path, recursive):
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self._local.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError("refusing to delete the root directory's contents")

    def delete_file(self, path):
        self._local.delete_file(path)

    def move(self, src, dest):
        self._local.move(src, dest)

    def copy_file(self, src, dest):
        self._local.copy_file(src, dest)

    def open_input_stream(self, path):
        return self._local.open_input_stream(path)

    def open_input_file(self, path):
        return self._local.open_input_file(path)

    def open_output_stream(self, path, metadata):
        return pa.PythonFile(_PublishOnClose(path), mode="w")

    def open_append_stream(self, path, metadata):
        return self._local.open_append_stream(path)


def atomic_local_filesystem() -> pafs.PyFileSystem:
    return pafs.PyFileSystem(AtomicLocalHandler())
