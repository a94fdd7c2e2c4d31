"""A loopback stand-in for the Hugging Face Hub's file API, enough for `snapshot_download`.

The endpoints huggingface_hub 1.x/2.x calls (hf_api.py repo_info / list_repo_tree,
file_download.py get_hf_file_metadata + the download):
- GET  /api/{models|datasets}/{repo}/revision/{rev}        -> {"id", "sha", "siblings"}
- GET  /api/{models|datasets}/{repo}/tree/{rev}?recursive=  -> [{"type": "file", "path", "size", "oid"}]
- HEAD /[datasets/]{repo}/resolve/{rev}/{file}              -> X-Repo-Commit, ETag, Content-Length
- GET  the same                                             -> the bytes
Refusals look like the hub's: a gated repository answers 401 or 403 with X-Error-Code: GatedRepo, a
missing one 404 with X-Error-Code: RepoNotFound. Every request is recorded, so a test can tell
whether a second prefetch downloaded anything.
"""

import contextlib
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_API = re.compile(r"^/api/(models|datasets)/(.+)/(revision|tree)/([^/]+)$")
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


@dataclass
class Repo:
    folder: Path
    kind: str = "models"  # the hub's URL word: models | datasets
    gated_status: int | None = None  # 401 or 403: the hub refuses without a token with access

    @property
    def files(self) -> dict[str, Path]:
        return {
            str(path.relative_to(self.folder)): path
            for path in sorted(self.folder.rglob("*"))
            if path.is_file()
        }

    @property
    def commit(self) -> str:
        """A stable 40-hex commit id derived from the files, as the hub's would be."""
        digest = hashlib.sha1()
        for name, path in self.files.items():
            digest.update(name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def downloads(self) -> list[str]:
        """Paths of the file bodies served (GET on /resolve/)."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub._answer(self, body=True)

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append((handler.command, path))
        if match := _API.match(path):
            kind, repo_id, what, _rev = match.groups()
            repo = self._repo(handler, repo_id, kind)
            if repo is None:
                return
            payload: Any
            if what == "revision":
                payload = {
                    "id": repo_id,
                    "sha": repo.commit,
                    "private": False,
                    "siblings": [{"rfilename": name} for name in repo.files],
                }
            else:
                payload = [
                    {
                        "type": "file",
                        "path": name,
                        "size": file.stat().st_size,
                        "oid": hashlib.sha1(file.read_bytes()).hexdigest(),
                    }
                    for name, file in repo.files.items()
                ]
            data = json.dumps(payload).encode()
            self._send(handler, 200, {"Content-Type": "application/json"}, data, body)
            return
        if match := _RESOLVE.match(path):
            dataset, repo_id, _rev, name = match.groups()
            repo = self._repo(handler, repo_id, "datasets" if dataset else "models")
            if repo is None:
                return
            file = repo.files.get(name)
            if file is None:
                self._send(handler, 404, {"X-Error-Code": "EntryNotFound"}, b"", body)
                return
            data = file.read_bytes()
            headers = {
                "X-Repo-Commit": repo.commit,
                "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                "Content-Type": "application/octet-stream",
            }
            self._send(handler, 200, headers, data, body)
            return
        self._send(handler, 404, {}, b"", body)

    def _repo(self, handler: BaseHTTPRequestHandler, repo_id: str, kind: str) -> Repo | None:
        repo = self.repos.get(repo_id)
        if repo is None or repo.kind != kind:
            message = "Repository not found"
            headers = {"X-Error-Code": "RepoNotFound", "X-Error-Message": message}
            self._send(handler, 404, headers, message.encode(), handler.command == "GET")
            return None
        if repo.gated_status is not None:
            message = f"Access to model {repo_id} is restricted. You must have access to it."
            headers = {"X-Error-Code": "GatedRepo", "X-Error-Message": message}
            self._send(handler, repo.gated_status, headers, message.encode(), True)
            return None
        return repo

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        data: bytes,
        body: bool,
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body and handler.command != "HEAD":
            handler.wfile.write(data)


@contextlib.contextmanager
def silent_hub() -> Iterator[str]:
    """A hub that accepts connections and never answers (a stuck download); its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
