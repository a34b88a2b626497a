"""Fixtures that build small archives in the exact official formats."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import pickle
import tarfile
import threading
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_cifar100_archive(path: Path, n_train: int = 20, n_test: int = 10, seed: int = 0):
    """A cifar-100-python.tar.gz with the official member names and pickle keys.

    Returns the images (N, 32, 32, 3) and labels that were encoded, for comparison.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    # gzip header mtime 0: the same content gives the same bytes (and checksum) every time
    with gzip.GzipFile(path, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:

        def add(name, obj):
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))

        for split, n in (("train", n_train), ("test", n_test)):
            images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            labels = [int(x) for x in rng.integers(0, 100, n)]
            # Official row layout: 1024 red, then 1024 green, then 1024 blue, row-major.
            rows = np.concatenate([images[..., c].reshape(n, 1024) for c in range(3)], axis=1)
            add(
                split,
                {
                    "batch_label": f"{split} batch 1 of 1",
                    "fine_labels": labels,
                    "coarse_labels": [x // 5 for x in labels],
                    "filenames": [f"img_{i}.png" for i in range(n)],
                    "data": rows,
                },
            )
            truth[split] = (images, np.array(labels))
        add(
            "meta",
            {
                "fine_label_names": [f"class{i:02d}" for i in range(100)],
                "coarse_label_names": [f"super{i:02d}" for i in range(20)],
            },
        )
    return truth


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_tinyimagenet_zip(
    path: Path, wnids=("n01443537", "n01629819", "n01641577"), per_class: int = 3, n_val: int = 4
):
    """A tiny-imagenet-200.zip with the official folder structure and annotation files.

    Images are flat colours (JPEG-stable) identifying the class; one is greyscale.
    """
    colors = {w: (40 + 60 * i, 200 - 50 * i, 90) for i, w in enumerate(wnids)}
    val_labels = []
    with zipfile.ZipFile(path, "w") as zf:
        root = "tiny-imagenet-200"
        zf.writestr(f"{root}/wnids.txt", "\n".join(wnids) + "\n")
        zf.writestr(
            f"{root}/words.txt",
            "".join(f"{w}\tname{i}, alias{i}\n" for i, w in enumerate(wnids))
            + "n99999999\tunused\n",
        )
        for w in wnids:
            boxes = []
            for i in range(per_class):
                img = np.full((64, 64, 3), colors[w], dtype=np.uint8)
                zf.writestr(f"{root}/train/{w}/images/{w}_{i}.JPEG", _jpeg(img))
                boxes.append(f"{w}_{i}.JPEG\t0\t0\t63\t63")
            zf.writestr(f"{root}/train/{w}/{w}_boxes.txt", "\n".join(boxes) + "\n")
        ann = []
        for i in range(n_val):
            w = wnids[i % len(wnids)]
            img = np.full((64, 64, 3), colors[w], dtype=np.uint8)
            blob = _jpeg(img[..., 0]) if i == 0 else _jpeg(img)  # val_0 is greyscale
            zf.writestr(f"{root}/val/images/val_{i}.JPEG", blob)
            ann.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
            val_labels.append(wnids.index(w))
        zf.writestr(f"{root}/val/val_annotations.txt", "\n".join(ann) + "\n")
        zf.writestr(f"{root}/test/images/test_0.JPEG", _jpeg(np.zeros((64, 64, 3), np.uint8)))
    return colors, val_labels


def make_zurich_zip(
    path: Path,
    n_train: int = 3,
    n_test: int = 2,
    top: str = "Zurich-RAW-to-DSLR-Dataset",
    skip: int | None = None,
) -> dict[str, list[bytes]]:
    """A Zurich RAW-to-RGB zip in the official layout: ``<top>/{train,test}/canon/<i>.jpg``
    (448 x 448 JPEGs) beside ``huawei_raw/<i>.png`` (4-channel-packed 224 x 224 16-bit RAW).
    ``skip`` leaves one train id out. Returns the JPEG bytes per split, by id."""
    rng = np.random.default_rng(0)
    jpegs: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in (("train", n_train), ("test", n_test)):
            jpegs[split] = []
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (448, 448, 3), dtype=np.uint8)).save(
                    buf, "JPEG", quality=90
                )
                jpegs[split].append(buf.getvalue())
                if split == "train" and i == skip:
                    continue
                zf.writestr(f"{top}/{split}/canon/{i}.jpg", buf.getvalue())
                raw = io.BytesIO()
                Image.fromarray(rng.integers(0, 1024, (448, 448), dtype=np.uint16)).save(raw, "PNG")
                zf.writestr(f"{top}/{split}/huawei_raw/{i}.png", raw.getvalue())
    return jpegs


@pytest.fixture
def make_zurich():
    """Factory: ``make_zurich(path, n_train=3, n_test=2, top=..., skip=None)`` -> JPEG bytes."""
    return make_zurich_zip


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files; counts every GET and, per path, answers the planned failures first
    (an HTTP status, or 0: drop the connection without an answer, a network error)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        plan = self.server.fail.get(self.path)
        if plan:
            code = plan.pop(0)
            if code == 0:
                self.close_connection = True
                return
            self.send_error(code)
            return
        super().do_GET()

    def log_message(self, *args, **kwargs):
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serve a folder over HTTP on loopback. Yields a namespace: ``root`` (the folder),
    ``url``, ``hits`` (paths requested, in order) and ``fail`` ({path: [status or 0, ...]},
    failures answered before the file)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits, server.fail = [], {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield types.SimpleNamespace(
        root=root,
        url=f"http://127.0.0.1:{server.server_address[1]}",
        hits=server.hits,
        fail=server.fail,
    )
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_dir(http_server):
    """Serve a folder over HTTP on loopback; yields (folder, base_url)."""
    return http_server.root, http_server.url


@pytest.fixture
def make_cifar():
    """Factory: ``make_cifar(path, n_train=20, n_test=10)`` -> encoded (images, labels)."""
    return make_cifar100_archive


@pytest.fixture
def make_tiny():
    """Factory: ``make_tiny(path)`` -> (class colours, val labels)."""
    return make_tinyimagenet_zip
