"""Dataset loading: IDX (gzip and raw), .npz and image folders, on tiny generated files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from archsearch.data import load_dataset
from archsearch.errors import UserError


def idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + a.astype(np.uint8).tobytes()


def write_idx(folder: Path, prefix: str, x: np.ndarray, y: np.ndarray, *, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
        data = idx_bytes(a)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    write_idx(tmp_path, "train", rng.integers(0, 255, (20, 6, 5)), np.arange(20) % 3)
    write_idx(tmp_path, "t10k", rng.integers(0, 255, (4, 6, 5)), np.array([0, 1, 2, 1]))
    return tmp_path


def test_idx_gzip_with_test_split(idx_dir: Path) -> None:
    ds = load_dataset(f"idx:{idx_dir}")
    assert ds.x.shape == (20, 1, 6, 5) and ds.x.dtype == np.uint8
    assert ds.shape == (1, 6, 5) and ds.num_classes == 3
    assert ds.x_test is not None and ds.x_test.shape == (4, 1, 6, 5)
    assert list(ds.y[:4]) == [0, 1, 2, 0]
    assert load_dataset(str(idx_dir)).x.shape == ds.x.shape  # recognised without the prefix


def test_idx_raw_without_test_split(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", np.zeros((6, 4, 4)), np.array([0, 1] * 3), gz=False)
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.x.shape == (6, 1, 4, 4) and ds.x_test is None


def test_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(f"idx:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="no train-images-idx3-ubyte"):
        load_dataset(f"idx:{tmp_path}")
    write_idx(tmp_path, "train", np.zeros((6, 4, 4)), np.array([0, 1] * 3))
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"PK\x03\x04garbage"))
    with pytest.raises(UserError, match="not an IDX file"):
        load_dataset(f"idx:{tmp_path}")
    labels.write_bytes(gzip.compress(idx_bytes(np.array([0, 1] * 3))[:-2]))
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_dataset(f"idx:{tmp_path}")
    labels.write_bytes(gzip.compress(idx_bytes(np.array([0, 1] * 4))))
    with pytest.raises(UserError, match="6 images but .* 8 labels"):
        load_dataset(f"idx:{tmp_path}")
    labels.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read"):
        load_dataset(f"idx:{tmp_path}")


def test_npz_layouts(tmp_path: Path) -> None:
    f = tmp_path / "d.npz"
    x = np.random.default_rng(0).random((8, 5, 5, 3)).astype(np.float32)
    np.savez(f, x=x, y=np.array([0, 1] * 4), x_test=x[:2], y_test=np.array([1, 0]))
    ds = load_dataset(f"npz:{f}")
    assert ds.x.shape == (8, 3, 5, 5)  # NHWC -> NCHW
    np.testing.assert_array_equal(ds.x[1, 2], x[1, :, :, 2])
    assert ds.x_test is not None and ds.num_classes == 2
    g = tmp_path / "g.npz"
    np.savez(g, x=np.zeros((4, 7, 7), np.uint8), y=np.array([0, 1, 2, 3]))
    assert load_dataset(str(g)).shape == (1, 7, 7)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 3, 3))}, "has no array 'y'"),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0, 1, 0])}, "4 images but 3 labels"),
        ({"x": np.zeros((4, 3, 3)), "y": np.zeros(4, int)}, "1 class"),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0.5] * 4)}, "integer class labels"),
        ({"x": np.zeros((4, 3)), "y": np.array([0, 1, 0, 1])}, r"expected \(N, H, W\)"),
        (
            {
                "x": np.zeros((4, 3, 3)),
                "y": np.array([0, 1, 0, 1]),
                "x_test": np.zeros((2, 4, 4)),
                "y_test": np.array([0, 1]),
            },
            "same shape",
        ),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0, 1, 0, -1])}, "must be 0..1"),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    f = tmp_path / "bad.npz"
    np.savez(f, **arrays)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=message):
        load_dataset(f"npz:{f}")


def test_npz_corrupt(tmp_path: Path) -> None:
    f = tmp_path / "bad.npz"
    f.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read .* as .npz"):
        load_dataset(f"npz:{f}")


def write_png(path: Path, value: int, size: tuple[int, int] = (6, 6), mode: str = "RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (value,) * 3 if mode == "RGB" else value).save(path)


def test_image_folder(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for label, value in (("cat", 10), ("dog", 200)):
            for i in range(3):
                write_png(tmp_path / split / label / f"{i}.png", value + i)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.classes == ("cat", "dog")
    assert ds.x.shape == (6, 3, 6, 6) and list(ds.y) == [0, 0, 0, 1, 1, 1]
    assert ds.x[4, 0, 0, 0] == 201
    assert ds.x_test is not None and len(ds.x_test) == 6


def test_image_folder_errors(tmp_path: Path) -> None:
    write_png(tmp_path / "a" / "0.png", 1)
    with pytest.raises(UserError, match="1 class folder"):
        load_dataset(f"folder:{tmp_path}")
    write_png(tmp_path / "b" / "0.png", 1, size=(7, 6))
    with pytest.raises(UserError, match="same size"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "b" / "0.png").write_bytes(b"broken")
    with pytest.raises(UserError, match="cannot read image"):
        load_dataset(f"folder:{tmp_path}")


def test_validation_split_is_seeded(idx_dir: Path) -> None:
    ds = load_dataset(f"idx:{idx_dir}")
    train, val = ds.split(val_fraction=0.25, seed=1)
    assert len(val) == 5 and len(train) == 15 and not set(train) & set(val)
    again, val2 = ds.split(val_fraction=0.25, seed=1)
    assert list(val2) == list(val)
    assert list(ds.split(val_fraction=0.25, seed=2)[1]) != list(val)
    assert len(ds.split(holdout="test")[0]) == 20


def test_absolute_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from archsearch.data import absolute_ref

    monkeypatch.chdir(tmp_path)
    assert absolute_ref("idx:fm") == f"idx:{tmp_path.resolve() / 'fm'}"
    assert absolute_ref("d.npz") == str(tmp_path.resolve() / "d.npz")
