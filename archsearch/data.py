"""Image-classification datasets for the training evaluator and the data-driven proxies.

A dataset is named by a string ``kind:path``:

* ``idx:DIR``: MNIST-format IDX files (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]`` and, when present, the ``t10k-`` test pair), as
  distributed for MNIST and Fashion-MNIST (and by Debian's ``dataset-fashion-mnist``);
* ``npz:FILE``: a NumPy archive with ``x`` (N, H, W), (N, H, W, C) or (N, C, H, W) and ``y``
  (N,) integer labels, optionally ``x_test`` and ``y_test``;
* ``folder:DIR``: one sub-folder per class holding images of one size (read with Pillow),
  optionally split into ``DIR/train`` and ``DIR/test``.

A path without a prefix is recognised by its form (a ``.npz`` file, a folder of IDX files, a
folder of class folders). Loading is torch-free; images stay ``uint8`` (or float32 as given)
until a batch is drawn. Every failure is a :class:`~archsearch.errors.UserError` naming the
dataset and saying what is wrong: a missing file, a corrupt IDX header, images and labels of
different counts, mismatched image shapes, fewer than two classes.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import UserError
from archsearch.limits import MAX_CLASSES, MAX_DATA_BYTES, MAX_INPUT_ELEMENTS

KINDS = ("idx", "npz", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Dataset:
    """Images as an (N, C, H, W) array, integer labels, and the test split when the source has one.

    Attributes:
        name: The source, as given (``idx:path``).
        x: Training images, (N, C, H, W), ``uint8`` or ``float32``.
        y: Training labels, (N,), ``int64`` in ``0..num_classes-1``.
        x_test: Test images (same layout), or None.
        y_test: Test labels, or None.
        classes: Class names (folder names, or ``"0"``, ``"1"``, ...).
    """

    name: str
    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    x_test: np.ndarray[Any, Any] | None
    y_test: np.ndarray[Any, Any] | None
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(
        self, *, holdout: str = "val", val_fraction: float = 0.1, seed: int = 0
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Indices ``(train, held_out)`` into :attr:`x`.

        ``holdout="val"`` keeps a seeded random ``val_fraction`` of the training images apart
        (the default for search: the test split stays unseen); ``"test"`` trains on every
        training image and returns an empty held-out index (evaluate on :attr:`x_test`).
        """
        n = len(self.y)
        if holdout == "test":
            if self.x_test is None:
                raise UserError(
                    f"holdout: {self.name} has no test split; use holdout=val (a held-out part "
                    "of the training images)"
                )
            return np.arange(n), np.arange(0)
        order = np.random.default_rng(seed).permutation(n)
        k = max(1, round(n * val_fraction))
        if k >= n:
            raise UserError(
                f"val_fraction: {val_fraction} leaves no training images out of {n} in "
                f"{self.name}; use a fraction below {1 - 1 / n:.3g}"
            )
        return np.sort(order[k:]), np.sort(order[:k])


def load_dataset(ref: str) -> Dataset:
    """Loads the dataset named ``ref`` (``idx:DIR``, ``npz:FILE``, ``folder:DIR`` or a path).

    Results are cached per reference (and the path's modification time) within a process.

    Raises:
        UserError: the dataset is missing, corrupt or unusable; the message says why.
    """
    kind, _, path = ref.partition(":")
    if kind not in KINDS or not path:
        kind, path = _guess(ref), ref
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--data {ref}: {p} does not exist")
    return _load(kind, str(p), ref, p.stat().st_mtime_ns)


def absolute_ref(ref: str) -> str:
    """``ref`` with its path made absolute (``idx:data/fm`` -> ``idx:/home/me/data/fm``), so
    that a stored run resumes from any working directory."""
    kind, _, path = ref.partition(":")
    if kind in KINDS and path:
        return f"{kind}:{Path(path).expanduser().resolve()}"
    return str(Path(ref).expanduser().resolve())


@cache
def _load(kind: str, path: str, ref: str, mtime: int) -> Dataset:
    if kind == "idx":
        data = _load_idx(Path(path), ref)
    elif kind == "npz":
        data = _load_npz(Path(path), ref)
    else:
        data = _load_folder(Path(path), ref)
    _check(data)
    return data


def _guess(ref: str) -> str:
    p = Path(ref).expanduser()
    if p.suffix == ".npz":
        return "npz"
    if p.is_dir() and any(p.glob("train-images-idx3-ubyte*")):
        return "idx"
    if p.is_dir():
        return "folder"
    raise UserError(
        f"--data {ref}: give the format as idx:DIR (MNIST-format files), npz:FILE (arrays x, y) "
        "or folder:DIR (one sub-folder per class)"
    )


def _check(d: Dataset) -> None:
    if len(d.x) != len(d.y):
        raise UserError(
            f"--data {d.name}: {len(d.x)} images but {len(d.y)} labels; they must match"
        )
    if d.x_test is not None and d.y_test is not None:
        if len(d.x_test) != len(d.y_test):
            raise UserError(
                f"--data {d.name}: {len(d.x_test)} test images but {len(d.y_test)} test labels"
            )
        if d.x_test.shape[1:] != d.x.shape[1:]:
            raise UserError(
                f"--data {d.name}: test images are {tuple(d.x_test.shape[1:])} but training "
                f"images are {tuple(d.x.shape[1:])}; they must have the same shape"
            )
    if len(d.x) < 2:
        raise UserError(f"--data {d.name}: {len(d.x)} training images; need at least 2")
    present = np.unique(d.y)
    if len(present) < 2:
        raise UserError(
            f"--data {d.name}: the labels hold {len(present)} class(es); a classifier needs at "
            "least 2"
        )
    for y in (d.y, d.y_test):
        if y is not None and len(y) and (y.min() < 0 or y.max() >= d.num_classes):
            raise UserError(
                f"--data {d.name}: labels range over {int(y.min())}..{int(y.max())}; they must "
                f"be 0..{d.num_classes - 1}"
            )


# --- IDX ---------------------------------------------------------------------------------

_IDX_DTYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx(path: Path, *, ndim: int, ref: str) -> np.ndarray[Any, Any]:
    """Reads one IDX file (gzip or raw) with ``ndim`` dimensions."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read(MAX_DATA_BYTES + 1)  # a gzip bomb stops here
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"--data {ref}: cannot read {path}: {e}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise UserError(
            f"--data {ref}: {path.name} holds more than {MAX_DATA_BYTES / 1024**3:.0f} GiB; "
            "archsearch keeps datasets in memory: use a subset"
        )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(
            f"--data {ref}: {path.name} is not an IDX file (header {raw[:4].hex() or 'empty'}); "
            "expected MNIST-format files"
        )
    if raw[3] != ndim:
        raise UserError(
            f"--data {ref}: {path.name} has {raw[3]} dimensions; expected {ndim} "
            f"({'images' if ndim == 3 else 'labels'})"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    start = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - start != expected:
        raise UserError(
            f"--data {ref}: {path.name} is truncated or corrupt: its header promises {dims} "
            f"({expected} bytes of data) but it holds {len(raw) - start}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(dims)


def _load_idx(directory: Path, ref: str) -> Dataset:
    if not directory.is_dir():
        raise UserError(f"--data {ref}: idx: needs a folder of MNIST-format files")
    pairs: list[tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any] | None]] = []
    for prefix in ("train", "t10k"):
        images = _find(directory, f"{prefix}-images-idx3-ubyte")
        labels = _find(directory, f"{prefix}-labels-idx1-ubyte")
        if prefix == "train" and (images is None or labels is None):
            missing = "train-images-idx3-ubyte" if images is None else "train-labels-idx1-ubyte"
            raise UserError(f"--data {ref}: no {missing}[.gz] in {directory}")
        if images is None or labels is None:
            pairs.append((None, None))
            continue
        x = read_idx(images, ndim=3, ref=ref)[:, None]
        y = read_idx(labels, ndim=1, ref=ref).astype(np.int64)
        if len(x) != len(y):
            raise UserError(
                f"--data {ref}: {images.name} has {len(x)} images but {labels.name} has "
                f"{len(y)} labels"
            )
        pairs.append((x, y))
    (xtr, ytr), (xt, yt) = pairs
    assert xtr is not None and ytr is not None
    n = _class_count(ref, ytr, yt)
    return Dataset(ref, xtr, ytr, xt, yt, tuple(str(i) for i in range(n)))


# --- npz ---------------------------------------------------------------------------------


def _images(a: np.ndarray[Any, Any], what: str, ref: str) -> np.ndarray[Any, Any]:
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
        a = a.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    elif a.ndim != 4:
        raise UserError(
            f"--data {ref}: {what} has shape {a.shape}; expected (N, H, W), (N, H, W, C) or "
            "(N, C, H, W)"
        )
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _labels(a: np.ndarray[Any, Any], what: str, ref: str) -> np.ndarray[Any, Any]:
    a = np.asarray(a).reshape(-1) if a.ndim == 2 and a.shape[1] == 1 else np.asarray(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise UserError(
            f"--data {ref}: {what} must be a 1-d array of integer class labels; got "
            f"{a.dtype} of shape {a.shape}"
        )
    if len(a) and int(a.max()) >= MAX_CLASSES:  # negative labels: see _check
        raise UserError(
            f"--data {ref}: {what} range up to {int(a.max())}; class labels are at most "
            f"{MAX_CLASSES - 1:,}"
        )
    return a.astype(np.int64)


def _class_count(ref: str, *labels: np.ndarray[Any, Any] | None) -> int:
    """The number of classes: one more than the largest label (bounded, and never negative)."""
    top = max((int(y.max()) for y in labels if y is not None and len(y)), default=0)
    if top >= MAX_CLASSES:
        raise UserError(
            f"--data {ref}: the largest label is {top}; at most {MAX_CLASSES:,} classes"
        )
    return top + 1


def _load_npz(path: Path, ref: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            # the sizes the archive declares, before anything is decompressed (zip bombs)
            size = sum(i.file_size for i in f.zip.infolist())
            if size > MAX_DATA_BYTES:
                raise UserError(
                    f"--data {ref}: {path.name} unpacks to {size:,} bytes; archsearch keeps "
                    f"datasets in memory, at most {MAX_DATA_BYTES / 1024**3:.0f} GiB"
                )
            arrays = {k: f[k] for k in f.files}
    except UserError:
        raise
    except Exception as e:  # zipfile, pickle and value errors alike mean a corrupt file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"--data {ref}: cannot read {path} as .npz: {first}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UserError(
                f"--data {ref}: {path.name} has no array {key!r} (it has "
                f"{', '.join(sorted(arrays)) or 'none'}); save images as x and labels as y"
            )
    x, y = _images(arrays["x"], "x", ref), _labels(arrays["y"], "y", ref)
    xt = _images(arrays["x_test"], "x_test", ref) if "x_test" in arrays else None
    yt = _labels(arrays["y_test"], "y_test", ref) if "y_test" in arrays else None
    if (xt is None) != (yt is None):
        raise UserError(f"--data {ref}: give both x_test and y_test, or neither")
    n = _class_count(ref, y, yt)
    return Dataset(ref, x, y, xt, yt, tuple(str(i) for i in range(n)))


# --- image folders -----------------------------------------------------------------------


def _read_folder(
    root: Path, classes: tuple[str, ...], ref: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from PIL import Image

    images: list[np.ndarray[Any, Any]] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, ...]] | None = None
    total = 0
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise UserError(f"--data {ref}: class folder {folder} is missing")
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    if im.width * im.height > MAX_INPUT_ELEMENTS:
                        raise UserError(
                            f"--data {ref}: {f} is {im.width}x{im.height} pixels; at most "
                            f"{MAX_INPUT_ELEMENTS:,} per image"
                        )
                    a = np.asarray(im.convert("L" if im.mode in ("1", "L", "I;16") else "RGB"))
            except UserError:
                raise
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise UserError(f"--data {ref}: cannot read image {f}: {e}") from None
            total += a.nbytes
            if total > MAX_DATA_BYTES:
                raise UserError(
                    f"--data {ref}: the images under {root} exceed "
                    f"{MAX_DATA_BYTES / 1024**3:.0f} GiB; archsearch keeps datasets in memory: "
                    "use a subset"
                )
            if first is None:
                first = (f, a.shape)
            elif a.shape != first[1]:
                raise UserError(
                    f"--data {ref}: {f} is {_hwc(a.shape)} but {first[0]} is {_hwc(first[1])}; "
                    "every image must have the same size and mode (resize them first)"
                )
            images.append(a)
            labels.append(label)
    if not images:
        raise UserError(f"--data {ref}: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return _images(np.stack(images), "images", ref), np.asarray(labels, dtype=np.int64)


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _load_folder(root: Path, ref: str) -> Dataset:
    if not root.is_dir():
        raise UserError(f"--data {ref}: folder: needs a directory with one sub-folder per class")
    base = root / "train" if (root / "train").is_dir() else root
    classes = tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise UserError(
            f"--data {ref}: {base} has {len(classes)} class folder(s); need at least 2 "
            "(one sub-folder of images per class)"
        )
    x, y = _read_folder(base, classes, ref)
    xt = yt = None
    if base is not root and (root / "test").is_dir():
        xt, yt = _read_folder(root / "test", classes, ref)
    return Dataset(ref, x, y, xt, yt, classes)
