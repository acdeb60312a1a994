"""Build the quick-profile Fashion-MNIST subset shipped inside tlcourse.

Reads Debian's ``dataset-fashion-mnist`` files (``apt-get install
dataset-fashion-mnist``), draws a class-balanced, seeded subset and writes
``tlcourse/_data/fashion_mnist_quick.npz`` plus the MIT license notice.
Run it again to regenerate; the output is byte-for-byte reproducible for
the same source files, and ``tlcourse.assets`` pins its sha256.

    python scripts/make_fashion_subset.py [--src /usr/share/datasets/fashion-mnist]
"""
from __future__ import annotations

import argparse
import gzip
import io
import pathlib
import zipfile

import numpy as np

TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 200
SEED = 20261128
OUT = pathlib.Path(__file__).resolve().parents[1] / "tlcourse" / "_data"

LICENSE = """Fashion-MNIST subset
====================
Source: Zalando Research, https://github.com/zalandoresearch/fashion-mnist
(files as packaged by Debian's dataset-fashion-mnist).
This file holds a class-balanced subset: {ntrain} training and {ntest} test
images (seed {seed}), drawn by scripts/make_fashion_subset.py.

The MIT License (MIT)
Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def read_idx(path: pathlib.Path) -> np.ndarray:
    raw = gzip.open(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return idx


def write_npz_deterministic(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed stamps the current time into the zip; this does not."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    src = pathlib.Path(args.src)
    if not (src / "train-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"No Fashion-MNIST under {src}. Run: apt-get install dataset-fashion-mnist")
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
        images = read_idx(src / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(src / f"{split}-labels-idx1-ubyte.gz")
        idx = balanced_indices(labels, per_class, rng)
        key = "train" if split == "train" else "test"
        arrays[f"{key}_images"], arrays[f"{key}_labels"] = images[idx], labels[idx].astype(np.int64)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "fashion_mnist_quick.npz"
    write_npz_deterministic(out, arrays)
    (OUT / "FASHION_MNIST_LICENSE.txt").write_text(
        LICENSE.format(ntrain=10 * TRAIN_PER_CLASS, ntest=10 * TEST_PER_CLASS, seed=SEED))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
