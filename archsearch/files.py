"""Reading the files users pass: bounded, UTF-8, and YAML without surprises; writing the
files users ask for atomically (:func:`atomic_path`, :func:`write_atomic`).

Every text file archsearch reads from a user (space and spec YAML/JSON, sweep files, CSV
tables) goes through :func:`read_text`, and every YAML document through :func:`parse_yaml`,
so that each failure is one line naming the file, never a traceback:

* the file is at most :data:`MAX_TEXT_BYTES` (checked before it is read), is UTF-8 (an
  optional byte-order mark is dropped) and holds no NUL character (PostgreSQL cannot store
  one);
* YAML is read with PyYAML's safe loader (no Python tags: nothing is constructed but plain
  data); a key written twice in one mapping is an error (by default YAML keeps the last one
  silently); aliases are allowed, but the document they expand to is bounded
  (:data:`MAX_YAML_NODES`), so that a few lines of nested aliases cannot expand into billions
  of values; nesting is bounded (:data:`MAX_YAML_DEPTH`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import UserError
from archsearch.limits import MAX_TABLE_BYTES, MAX_TEXT_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

__all__ = [
    "MAX_TABLE_BYTES",
    "MAX_TEXT_BYTES",
    "atomic_path",
    "decode",
    "exists",
    "is_file",
    "parse_yaml",
    "read_bytes",
    "read_text",
    "short",
    "write_atomic",
]


def describe_os_error(e: OSError) -> str:
    """``e``'s reason in a few words (``File name too long``, ``Is a directory``)."""
    return e.strerror or type(e).__name__


def short(name: str, limit: int = 120) -> str:
    """A path or value cut to ``limit`` characters for a one-line message."""
    return name if len(name) <= limit else name[: limit - 3] + "..."


def read_bytes(
    path: str | Path,
    *,
    what: str,
    error: type[UserError] = UserError,
    max_bytes: int = MAX_TEXT_BYTES,
) -> bytes:
    """The bytes of a user's file, at most ``max_bytes``.

    Raises:
        error: missing, not a regular file, unreadable, too long a name, or too large; the
            message starts with ``what`` and the path.
    """
    name = short(str(path))
    try:
        p = Path(path)
        st = p.stat()
        if not p.is_file():
            raise error(f"{what} {name!r} is not a file")
        if st.st_size > max_bytes:
            raise error(
                f"{what} {name!r} is {st.st_size:,} bytes; the most archsearch reads is "
                f"{max_bytes:,}"
            )
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)  # the size may have changed since stat
    except FileNotFoundError:
        raise error(f"{what} {name!r} does not exist") from None
    except OSError as e:
        raise error(f"cannot read {what} {name!r}: {describe_os_error(e)}") from None
    except ValueError as e:  # an embedded NUL in the path
        raise error(f"{what} {name!r} is not a valid path: {e}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {name!r} is larger than {max_bytes:,} bytes")
    return data


def decode(data: bytes, *, what: str, error: type[UserError] = UserError) -> str:
    """UTF-8 text (a leading byte-order mark dropped) without NUL characters.

    Raises:
        error: the bytes are not UTF-8 or contain a NUL; the message gives the offset.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(
            f"{what}: line {line}: byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8; "
            "save the file as UTF-8"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise error(f"{what}: line {line}: the file contains a NUL character; remove it")
    return text


def read_text(
    path: str | Path,
    *,
    what: str,
    error: type[UserError] = UserError,
    max_bytes: int = MAX_TEXT_BYTES,
) -> str:
    """A user's text file: bounded, UTF-8, no NUL (see :func:`read_bytes`, :func:`decode`)."""
    data = read_bytes(path, what=what, error=error, max_bytes=max_bytes)
    return decode(data, what=f"{what} {short(str(path))}", error=error)


def is_file(path: str | Path) -> bool:
    """``Path(path).is_file()`` that is False, not an error, for impossible names (too long,
    an embedded NUL)."""
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def exists(path: str | Path) -> bool:
    """``Path(path).exists()`` that is False, not an error, for impossible names."""
    try:
        return os.path.exists(path)
    except (OSError, ValueError):
        return False


# libyaml's parser when PyYAML has it (about 10x faster), with PyYAML's safe constructor.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[valid-type,misc]
    """The safe loader, refusing keys written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise _Duplicate(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first on line {first}); "
                    "write it once",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        out: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return out


class _Duplicate(yaml.constructor.ConstructorError):
    pass


def _check_size(root: yaml.Node) -> None:
    """Refuses documents whose aliases expand beyond :data:`MAX_YAML_NODES` values, nest
    deeper than :data:`MAX_YAML_DEPTH` or refer to themselves."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_YAML_DEPTH:
            raise _TooBig(f"nests deeper than {MAX_YAML_DEPTH} levels")
        if key in active:
            raise _TooBig("has an alias inside the node it refers to")
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            active.add(key)
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [x for pair in node.value for x in pair]
            )
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_YAML_NODES:
                    raise _TooBig(
                        f"expands to more than {MAX_YAML_NODES:,} values through its aliases"
                    )
            active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


class _TooBig(Exception):
    pass


def parse_yaml(
    text: str, source: str, *, error: type[UserError] = UserError
) -> tuple[Any, yaml.Node | None]:
    """The document in ``text`` (plain data only) and its node tree (for line numbers).

    Raises:
        error: a syntax error, a key written twice, a document too large or too deep; as
            ``source:line: ...``.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        try:
            _check_size(root)
        except _TooBig as e:
            raise error(f"{source}: the YAML document {e}") from None
        data = loader.construct_document(root)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        if isinstance(e, _Duplicate):
            kind = ""
        elif isinstance(e, yaml.constructor.ConstructorError):
            kind = "YAML error: "  # e.g. a python/object tag, which the safe loader refuses
        else:
            kind = "YAML syntax error: "
        raise error(f"{source}{line}: {kind}{problem}") from None
    except RecursionError:
        raise error(f"{source}: the YAML document nests too deeply") from None
    finally:
        loader.dispose()
    return data, root


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; moved over ``path`` when the block ends
    without an error, removed otherwise, so that a failed write leaves an earlier file of
    that name as it was.

    Raises:
        UserError: the directory cannot be created or written, or ``path`` is a directory.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as e:
        raise UserError(f"cannot write {short(str(target))!r}: {describe_os_error(e)}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would give
            os.replace(tmp, target)
        except OSError as e:
            raise UserError(
                f"cannot write {short(str(target))!r}: {describe_os_error(e)}"
            ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Writes ``data`` (text as UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
