"""Fixtures: the official-format writers of :mod:`repro.data.fake`, a loopback HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
import types

import pytest

# .ci/gpu_smoke.py loads this file by path and calls these two writers
from repro.data.fake import make_cifar100_archive, make_tinyimagenet_zip, make_zurich_zip


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
    """Factory: ``make_tiny(path, wnids=3, per_class=3, n_val=4)`` -> (colours, val labels)."""
    return make_tinyimagenet_zip
