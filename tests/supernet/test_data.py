"""The dataset registry: loaders of every format, fit checks, seeded splits, batches and augmentation."""

from __future__ import annotations

import dataclasses
import gzip
import io
import itertools
import os
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search_space.errors import InputError
from supernet.data import (
    AUGMENTATIONS,
    DATASETS,
    DataError,
    DatasetSplits,
    Split,
    iterate_batches,
    load_dataset,
    normalize,
)
from supernet.datasets import catalog
from supernet.datasets.augment import augment_batch, crop_padding
from supernet.datasets.digits import digits_arrays

SHARED = Path(__file__).parents[3] / "shared" / "datasets"
FASHION = SHARED / "fashion-mnist"
CIFAR_SUBSET = SHARED / "cifar10" / "cifar10-lossless-subset.npz"
CIFAR_JPEG = SHARED / "cifar10" / "cifar10-jpeg-full.npz"


def ids(split: Split) -> set[int]:
    return set(split.ids.tolist())


def assert_one_line(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# ---------------------------------------------------------------- registry


def test_registry_names_and_augmentations():
    assert DATASETS == ("digits", "fashion-mnist", "cifar10", "imagefolder")
    expected = {"digits": "none", "fashion-mnist": "crop", "cifar10": "crop-flip", "imagefolder": "crop-flip"}
    assert {name: catalog.SPECS[name].augment for name in DATASETS} == expected
    assert set(expected.values()) <= set(AUGMENTATIONS)
    assert issubclass(DataError, InputError)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    assert_one_line(err, "'mnist'", *DATASETS)


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits", size=8, channels=1, num_classes=10, seed=0)


def test_digits_shapes_and_sizes(digits):
    assert digits.name == "digits" and digits.num_classes == 10 and digits.augment == "none"
    assert "scikit-learn" in digits.source
    for split in (digits.train, digits.val, digits.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 8, 8)
        assert split.labels.dtype == torch.int64 and len(split) == split.labels.shape[0]
        assert set(split.labels.tolist()) == set(range(10))
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert len(digits.test) == pytest.approx(0.2 * 1797, abs=10)
    assert len(digits.val) == pytest.approx(0.1 * 0.8 * 1797, abs=10)
    assert int(digits.train.images.max()) == 255


def test_digits_splits_are_disjoint_and_seeded(digits):
    assert ids(digits.train) | ids(digits.val) | ids(digits.test) == set(range(1797))
    assert not ids(digits.train) & ids(digits.val)
    assert not ids(digits.test) & (ids(digits.train) | ids(digits.val))
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert torch.equal(again.train.ids, digits.train.ids)
    assert torch.equal(again.train.images, digits.train.images)
    assert not torch.equal(other.val.ids, digits.val.ids)
    assert torch.equal(other.test.ids, digits.test.ids)  # the test split never depends on the seed


def test_digits_limit_keeps_the_test_split(digits):
    small = load_dataset("digits", limit=300)
    assert len(small.train) + len(small.val) == 300
    assert torch.equal(small.test.ids, digits.test.ids)


def test_digits_fast_path_equals_sklearn():
    fast, sk = digits_arrays(), digits_arrays(use_sklearn=True)
    assert np.array_equal(fast[0], sk[0]) and np.array_equal(fast[1], sk[1])


def test_digits_rejects_a_data_dir(tmp_path):
    with pytest.raises(DataError, match="drop --data-dir"):
        load_dataset("digits", tmp_path)


# ---------------------------------------------------------------- fit checks


@pytest.mark.parametrize(
    ("name", "kwargs", "fragments"),
    [
        ("fashion-mnist", {"size": 32}, ["fashion-mnist has 28x28 images, the space expects 32x32",
                                          "input.size is 28"]),
        ("digits", {"size": 16}, ["digits has 8x8 images", "input.size is 8"]),
        ("cifar10", {"channels": 1}, ["cifar10 has 3-channel (RGB) images", "input.channels is 3"]),
        ("digits", {"num_classes": 100}, ["digits has 10 classes, the space's num_classes is 100"]),
    ],
)
def test_fit_checks_name_the_problem_and_the_fix(name, kwargs, fragments):
    with pytest.raises(DataError) as err:
        load_dataset(name, **kwargs)
    assert_one_line(err, *fragments)


def test_missing_data_dir(tmp_path, monkeypatch):
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path / "nope")
    assert_one_line(err, "nope", "--data-dir")
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    no_system_copy = dataclasses.replace(catalog.SPECS["fashion-mnist"], system_dir=str(tmp_path / "absent"))
    monkeypatch.setitem(catalog.SPECS, "fashion-mnist", no_system_copy)
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist")
    assert_one_line(err, "--data-dir", "NAS_DATA_DIR")


@pytest.mark.parametrize(
    ("arg", "value"), [("val_fraction", 1.0), ("limit", 0), ("channels", 2), ("size", -1)]
)
def test_bad_arguments(arg, value):
    with pytest.raises(DataError, match=arg):
        load_dataset("digits", **{arg: value})


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def write_idx(path: Path, magic: int, array: np.ndarray, *, gz: bool) -> Path:
    payload = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fashion(folder: Path, *, gz: bool, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, array in arrays.items():
        write_idx(folder / stem, 2051 if array.ndim == 3 else 2049, array, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_load(tmp_path, gz):
    arrays = write_fashion(tmp_path, gz=gz)
    splits = load_dataset("fashion-mnist", tmp_path, size=28, channels=1, num_classes=10, val_fraction=0.2)
    assert len(splits.train) + len(splits.val) == 30 and len(splits.test) == 10
    assert splits.train.images.shape[1:] == (1, 28, 28) and splits.augment == "crop"
    first = int(splits.train.ids[0])
    assert np.array_equal(splits.train.images[0, 0].numpy(), arrays["train-images-idx3-ubyte"][first])
    assert torch.equal(splits.test.labels, torch.arange(10))
    assert str(tmp_path) in splits.source and ("gzipped" in splits.source) == gz


def test_idx_default_root_from_env(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fashion-mnist", gz=True)
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path))
    assert len(load_dataset("fashion-mnist").test) == 10


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated_file_names_it(tmp_path, gz):
    write_fashion(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[: -500])
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert_one_line(err, name)


def test_idx_bad_magic_names_the_file(tmp_path):
    write_fashion(tmp_path, gz=False)
    labels = np.zeros(10, np.uint8)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", 2051, labels, gz=False)  # an images magic on labels
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert_one_line(err, "t10k-labels-idx1-ubyte", "magic number 2051, expected 2049")


def test_idx_label_count_mismatch(tmp_path):
    write_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 2049, np.zeros(29, np.uint8), gz=False)
    with pytest.raises(DataError, match="29 labels for 30 images"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"no offline Fashion-MNIST at {FASHION}")
def test_real_fashion_mnist():
    splits = load_dataset("fashion-mnist", FASHION, size=28, channels=1, num_classes=10)
    assert len(splits.train) + len(splits.val) == 60_000 and len(splits.test) == 10_000
    pool = torch.cat([splits.train.ids, splits.val.ids])
    labels = torch.cat([splits.train.labels, splits.val.labels])
    assert int(labels[pool == 0]) == 9  # the first training image is an ankle boot
    assert int(splits.test.labels[0]) == 9
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10


# ---------------------------------------------------------------- CIFAR-10: python batches


def write_batches(folder: Path, *, n: int = 4, protocol: int = 2, numpy1: bool = False) -> dict:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        raw = pickle.dumps({b"batch_label": b"fake", b"data": data, b"labels": labels}, protocol=protocol)
        if numpy1:  # as numpy 1.x named its reconstructor (the official batches)
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(raw)
        written[name] = data
    return written


@pytest.mark.parametrize(("protocol", "numpy1"), [(2, False), (2, True), (4, False), (5, False)])
def test_cifar_python_batches(tmp_path, protocol, numpy1):
    written = write_batches(tmp_path / "cifar-10-batches-py", protocol=protocol, numpy1=numpy1)
    splits = load_dataset("cifar10", tmp_path, size=32, channels=3, num_classes=10, val_fraction=0.0)
    assert len(splits.train) == 20 and len(splits.test) == 4 and len(splits.val) == 0
    assert np.array_equal(splits.train.images[0].numpy().reshape(-1), written["data_batch_1"][0])
    assert np.array_equal(splits.test.images[3].numpy().reshape(-1), written["test_batch"][3])
    assert "python batches" in splits.source


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    write_batches(tmp_path)
    marker = tmp_path / "pwned.txt"
    with (tmp_path / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"labels": [0]}, f)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path)
    assert_one_line(err, "data_batch_3", "refuses to unpickle", "system", "which would run code")
    assert not marker.exists()


def test_cifar_incomplete_batches(tmp_path):
    write_batches(tmp_path)
    (tmp_path / "data_batch_5").unlink()
    with pytest.raises(DataError, match="missing data_batch_5"):
        load_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- CIFAR-10: npz


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_cifar_npz_arrays(tmp_path, layout):
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    if layout == "NCHW":
        x_train, x_test = x_train.transpose(0, 3, 1, 2), x_test.transpose(0, 3, 1, 2)
    path = tmp_path / "c.npz"
    np.savez(path, x_train=x_train, y_train=np.arange(20) % 10, x_test=x_test, y_test=np.arange(5))
    for where in (path, tmp_path):
        splits = load_dataset("cifar10", where, val_fraction=0.0)
        assert splits.train.images.shape == (20, 3, 32, 32) and splits.test.images.shape == (5, 3, 32, 32)
        expected = x_train[0] if layout == "NCHW" else x_train[0].transpose(2, 0, 1)
        assert np.array_equal(splits.train.images[0].numpy(), expected)
        assert str(path) in splits.source


def test_cifar_npz_of_the_wrong_images(tmp_path):
    path = tmp_path / "c.npz"
    x = np.zeros((4, 28, 28, 3), np.uint8)
    np.savez(path, x_train=x, y_train=np.zeros(4, np.int64), x_test=x, y_test=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="28x28"):
        load_dataset("cifar10", path)


def _flip_in_member(path: Path, member: str) -> None:
    """Change one byte of a stored (uncompressed) npz member's data, so that its CRC-32 fails."""
    raw = bytearray(path.read_bytes())
    at = raw.index(member.encode()) + 200  # past the local header and the .npy header
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["not-a-zip", "bad-crc"])
def test_cifar_damaged_npz_is_a_data_error(tmp_path, damage):
    """Found by tests/nas/test_fuzz_inputs.py: zipfile.BadZipFile escaped the npz readers (exit 1)."""
    path = tmp_path / "c.npz"
    x = np.zeros((10, 3, 32, 32), np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(10), x_test=x, y_test=np.arange(10))
    if damage == "not-a-zip":
        path.write_bytes(path.read_bytes()[-300:])
    else:
        _flip_in_member(path, "x_test.npy")
    with pytest.raises(DataError, match=r"c\.npz: not a readable \.npz"):
        load_dataset("cifar10", path)
    # in a folder, a file whose zip directory is damaged is skipped; one with a bad member is named
    message = "no CIFAR-10 data" if damage == "not-a-zip" else r"c\.npz: not a readable \.npz"
    with pytest.raises(DataError, match=message):
        load_dataset("cifar10", tmp_path)


def write_packed_jpeg(path: Path, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    arrays, decoded = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        files = []
        for _ in range(n):
            buffer = io.BytesIO()
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buffer, "JPEG", quality=75)
            files.append(buffer.getvalue())
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(files), np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(f) for f in files]).astype(np.int64)
        arrays[f"y_{split}"] = (np.arange(n) % 10).astype(np.uint8)
        decoded[split] = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
    np.savez(path, **arrays)
    return decoded


def test_cifar_packed_jpeg(tmp_path):
    decoded = write_packed_jpeg(tmp_path / "jpeg.npz", n_train=12, n_test=4)
    splits = load_dataset("cifar10", tmp_path / "jpeg.npz", val_fraction=0.0, limit=10)
    assert len(splits.train) == 10 and len(splits.test) == 4
    assert np.array_equal(splits.train.images.numpy(), decoded["train"][:10].transpose(0, 3, 1, 2))
    assert "packed JPEG" in splits.source and "lossy" in splits.source


def test_cifar_folder_prefers_the_most_training_images(tmp_path):
    write_packed_jpeg(tmp_path / "full.npz", n_train=12, n_test=2)
    x = np.zeros((6, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "subset.npz", x_train=x, y_train=np.zeros(6, np.int64), x_test=x, y_test=np.zeros(6))
    assert "full.npz" in load_dataset("cifar10", tmp_path).source


def test_cifar_packed_jpeg_damaged_zip_member(tmp_path):
    write_packed_jpeg(tmp_path / "jpeg.npz", n_train=3, n_test=2)
    _flip_in_member(tmp_path / "jpeg.npz", "train_jpeg.npy")
    with pytest.raises(DataError, match=r"train_jpeg\): not a readable \.npz"):
        load_dataset("cifar10", tmp_path / "jpeg.npz")


def test_cifar_packed_jpeg_corrupt(tmp_path):
    write_packed_jpeg(tmp_path / "jpeg.npz", n_train=3, n_test=2)
    with np.load(tmp_path / "jpeg.npz") as npz:
        arrays = dict(npz)
    arrays["train_jpeg"] = arrays["train_jpeg"].copy()
    arrays["train_jpeg"][arrays["train_offsets"][1] : arrays["train_offsets"][2]] = 7  # image 1 is garbage
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path / "bad.npz")
    assert_one_line(err, "bad.npz", "image 1")


def test_cifar_folder_without_data(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 data"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.skipif(not CIFAR_SUBSET.is_file(), reason=f"no offline CIFAR-10 subset at {CIFAR_SUBSET}")
def test_real_cifar_lossless_subset():
    splits = load_dataset("cifar10", CIFAR_SUBSET, size=32, channels=3, num_classes=10)
    assert len(splits.train) + len(splits.val) == 4000 and len(splits.test) == 1000
    assert splits.test.images[0, :, 0, 0].tolist() == [158, 112, 49]  # shared/datasets/README.md, 2a
    assert int(splits.train.labels.min()) >= 0 and int(splits.train.labels.max()) <= 9


@pytest.mark.skipif(not CIFAR_JPEG.is_file(), reason=f"no offline CIFAR-10 packed JPEG at {CIFAR_JPEG}")
def test_real_cifar_packed_jpeg_limited():
    splits = load_dataset("cifar10", CIFAR_JPEG, limit=200)
    assert len(splits.train) + len(splits.val) == 200 and splits.test.images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10
    assert "packed JPEG" in splits.source


# ---------------------------------------------------------------- imagefolder


def write_folder(root: Path, classes: dict[str, int], sizes=((10, 12), (40, 40))) -> None:
    rng = np.random.default_rng(4)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            w, h = sizes[i % len(sizes)]
            mode = "L" if i % 3 == 2 else "RGB"
            shape = (h, w) if mode == "L" else (h, w, 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / name / f"{i:03d}.png")


def test_imagefolder_resizes_and_converts(tmp_path):
    write_folder(tmp_path / "train", {"dog": 5, "cat": 5})
    write_folder(tmp_path / "test", {"cat": 2, "dog": 2})
    for channels in (3, 1):
        splits = load_dataset(
            "imagefolder", tmp_path, size=16, channels=channels, num_classes=2, val_fraction=0.2
        )
        assert splits.class_names == ("cat", "dog") and splits.num_classes == 2
        assert splits.train.images.shape[1:] == (channels, 16, 16) and len(splits.test) == 4
        assert len(splits.train) + len(splits.val) == 10 and splits.augment == "crop-flip"


def test_imagefolder_without_test_splits_a_fixed_fifth(tmp_path):
    write_folder(tmp_path / "train", {"a": 10, "b": 10, "c": 10})
    first = load_dataset("imagefolder", tmp_path, size=8, seed=0)
    second = load_dataset("imagefolder", tmp_path, size=8, seed=1)
    assert len(first.test) == 6 and torch.equal(first.test.ids, second.test.ids)
    assert not (ids(first.train) | ids(first.val)) & ids(first.test)


def test_imagefolder_unreadable_image_is_named(tmp_path):
    write_folder(tmp_path / "train", {"a": 2, "b": 2})
    (tmp_path / "train" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as err:
        load_dataset("imagefolder", tmp_path, size=8)
    assert_one_line(err, "broken.png")


@pytest.mark.parametrize("empty", ["no-train", "no-classes", "empty-class"])
def test_imagefolder_empty(tmp_path, empty):
    if empty != "no-train":
        (tmp_path / "train").mkdir()
    if empty == "empty-class":
        write_folder(tmp_path / "train", {"a": 2})
        (tmp_path / "train" / "b").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("imagefolder", tmp_path, size=8)
    assert_one_line(err, str(tmp_path))


def test_imagefolder_class_count_and_size_required(tmp_path):
    write_folder(tmp_path / "train", {"a": 2, "b": 2})
    with pytest.raises(DataError, match="has 2 classes, the space's num_classes is 5"):
        load_dataset("imagefolder", tmp_path, size=8, num_classes=5)
    with pytest.raises(DataError, match="size"):
        load_dataset("imagefolder", tmp_path)


# ---------------------------------------------------------------- batches and augmentation


def numbered_split(n: int = 50, channels: int = 3, size: int = 8) -> Split:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    return Split(images, torch.arange(n), torch.arange(n), (0.5,) * channels, (0.25,) * channels)


def epoch(split: Split, seed: int, **kwargs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(iterate_batches(split, 16, generator=torch.Generator().manual_seed(seed), **kwargs))


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_epoch_covers_every_image_once(drop_last):
    split = numbered_split(50)
    batches = epoch(split, 0, shuffle=True, augment="crop-flip", drop_last=drop_last)
    seen = torch.cat([y for _, y in batches]).tolist()
    assert len(seen) == len(set(seen)) == (48 if drop_last else 50)
    assert seen != sorted(seen)
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 8, 8) and y.dtype == torch.int64


def test_epochs_are_deterministic_given_the_generator():
    split = numbered_split(50)
    a, b, c = (epoch(split, seed, shuffle=True, augment="crop-flip") for seed in (7, 7, 8))
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][1], c[0][1])


def test_evaluation_order_and_partial_batch():
    split = numbered_split(50)
    batches = list(iterate_batches(split, 16))
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    assert torch.equal(torch.cat([y for _, y in batches]), split.labels)
    assert torch.equal(torch.cat([x for x, _ in batches]), normalize(split.images, split))


def test_crop_flip_changes_images_and_none_does_not():
    split = numbered_split(64)
    plain = torch.cat([x for x, _ in epoch(split, 0, augment="none")])
    shifted = torch.cat([x for x, _ in epoch(split, 0, augment="crop-flip")])
    assert torch.equal(plain, normalize(split.images, split))
    assert shifted.shape == plain.shape and shifted.dtype == plain.dtype
    changed = (shifted != plain).flatten(1).any(1)
    assert changed.float().mean() > 0.8


@pytest.mark.parametrize("augment", ["crop", "crop-flip"])
def test_augmentation_is_a_padded_crop(augment):
    images = numbered_split(12, channels=2, size=14).images
    out = augment_batch(images, augment, torch.Generator().manual_seed(3))
    pad = crop_padding(augment, 14)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    flips = (False, True) if augment == "crop-flip" else (False,)
    for i in range(len(images)):
        shifts = itertools.product(range(2 * pad + 1), repeat=2)
        crops = [padded[i, :, dy : dy + 14, dx : dx + 14] for dy, dx in shifts]
        assert any(torch.equal(out[i], c.flip(2) if f else c) for c in crops for f in flips)


def test_augmentation_is_vectorized():
    images = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    augment_batch(images, "crop-flip", g)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        augment_batch(images, "crop-flip", g)
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.05  # about 4 ms here; a loop per image would take far longer


def test_normalized_train_split_has_zero_mean(digits):
    x = torch.cat([x for x, _ in iterate_batches(digits.train, 256)])
    assert x.mean().abs() < 1e-4 and (x.std() - 1).abs() < 1e-2
    assert torch.allclose(normalize(digits.train.images, digits), x)


def test_iterate_batches_argument_errors():
    split = numbered_split(10)
    with pytest.raises(ValueError, match="generator"):
        next(iterate_batches(split, 4, shuffle=True))
    with pytest.raises(ValueError, match="augment"):
        next(iterate_batches(split, 4, augment="mixup", generator=torch.Generator()))
