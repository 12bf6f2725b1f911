"""A stand-in Hugging Face Hub on loopback, for testing pushes and downloads with the real client.

:class:`StubHub` is an in-memory Hub served by a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0).
It implements just enough of the Hub API for ``huggingface_hub`` (2.x) and ``transformers`` to create a repo,
commit files (``upload_folder`` / ``upload_file`` / ``create_commit`` / ``push_to_hub``), and read them back
(``hf_hub_download``, ``snapshot_download``, ``from_pretrained``, ``list_repo_files``, ``model_info``).
Every file is stored in git ("regular" upload mode, content inline in the commit), never LFS or Xet.

Endpoints (``{type}`` is ``models``, ``datasets`` or ``spaces``; ``{repo}`` is ``namespace/name``)::

    POST      /api/repos/create                          409 with the url when it exists
    POST      /api/validate-yaml                         accepts any README metadata
    GET       /api/whoami-v2
    POST      /api/{type}/{repo}/preupload/{rev}         every file "regular", oid of the file at rev
    POST      /api/{type}/{repo}/commit/{rev}            NDJSON: header, file (base64), deletedFile/Folder
    GET       /api/{type}/{repo}[/revision/{rev}]        repo info: sha, siblings
    GET       /api/{type}/{repo}/tree/{rev}[/{path}]     ?recursive=true|false
    GET       /api/{type}/{repo}/refs                    branches
    HEAD|GET  /[datasets/|spaces/]{repo}/resolve/{rev}/{path}
                                                         X-Repo-Commit, ETag (git blob sha1), Content-Length

Write endpoints require a bearer token. Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``) so the client raises its usual exceptions. Any other request is
answered 501 and recorded in :attr:`StubHub.unhandled`.

:func:`use_stub_hub` points ``huggingface_hub`` and ``transformers`` at a started stub (env vars *and* the
constants they read at import time) and refuses every socket connection that is not to loopback; the
``stub_hub`` fixture wraps it. To use it from a test module, import the fixture function there::

    from hub_stub import stub_hub_fixture  # noqa: F401  (provides the `stub_hub` fixture)

    def test_push(stub_hub):  # a started StubHub; huggingface_hub / transformers now talk to it
        model.push_to_hub("user/repo")
        assert "config.json" in stub_hub.files("user/repo")
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

USER = "user"
TOKEN = "hf_stub_token"
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob holding ``data`` (what the Hub reports as a regular file's oid / ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An error answer: HTTP status, Hub ``X-Error-Code`` (or ``None``), message and extra headers."""

    def __init__(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Repo:
    """One repository: immutable snapshots keyed by commit sha, and branches pointing at them."""

    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str:
        """Commit sha of a branch name or a (full) commit sha."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.commits:
            return revision
        raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def commit(self, branch: str, files: dict[str, bytes], summary: str) -> str:
        """Record ``files`` as the new head of ``branch``; returns the commit sha."""
        parent = self.branches.get(branch, "")
        listing = sorted((path, git_blob_sha1(data)) for path, data in files.items())
        sha = hashlib.sha1(json.dumps([parent, summary, len(self.commits), listing]).encode()).hexdigest()
        self.commits[sha] = files
        self.branches[branch] = sha
        return sha


class StubHub:
    """An in-memory Hub served on loopback. ``start()`` it (or use it as a context manager) and read ``url``."""

    def __init__(self, user: str = USER):
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.refused: list[Any] = []  # off-loopback connection attempts, filled by use_stub_hub's guard
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("the stub Hub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StubHub:
        """Serve on an ephemeral loopback port from a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self
        threading.Thread(target=self._server.serve_forever, name="stub-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StubHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------------------------

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision``, ``{path: bytes}``."""
        with self.lock:
            repo = self.get_repo(repo_type, repo_id)
            return dict(repo.commits[repo.resolve(revision)])

    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        """The repository, or a ``RepoNotFound`` error."""
        try:
            return self.repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, "RepoNotFound", f"Repository Not Found: {repo_type} {repo_id}") from None

    def repo_url(self, repo: Repo) -> str:
        """The repository's web URL on this stub."""
        return f"{self.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # -- API -------------------------------------------------------------------------------------------------

    def create_repo(self, body: dict[str, Any]) -> tuple[int, dict]:
        """``POST /api/repos/create``: a repo with one empty commit on ``main``; 409 (with its url) if it exists."""
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.user}/{body['name']}"
        key = (repo_type, repo_id)
        if key in self.repos:
            return 409, {"error": f"You already created this {repo_type} repo", "url": self.repo_url(self.repos[key])}
        repo = self.repos[key] = Repo(repo_type, repo_id, private=body.get("visibility") == "private")
        repo.commit("main", {}, "initial commit")
        return 200, {"url": self.repo_url(repo), "name": repo_id, "id": repo_id}

    def preupload(self, repo: Repo, revision: str, body: dict[str, Any]) -> dict:
        """Upload modes: always "regular"; ``oid`` lets the client skip files that did not change."""
        current = repo.commits[repo.resolve(revision)]
        return {
            "files": [
                {
                    "path": f["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(current[f["path"]]) if f["path"] in current else None,
                }
                for f in body["files"]
            ]
        }

    def commit(self, repo: Repo, revision: str, payload: bytes, create_pr: bool) -> dict:
        """Apply an NDJSON commit payload to branch ``revision``."""
        if create_pr:
            raise HubError(400, None, "the stub Hub does not support pull requests")
        if revision not in repo.branches:
            raise HubError(400, "RevisionNotFound", f"commits go to a branch; {revision!r} is not one")
        lines = [json.loads(line) for line in payload.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, None, "the commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and not repo.branches[revision].startswith(parent):
            raise HubError(412, None, f"{revision} is at {repo.branches[revision]}, not at parent {parent}")
        files = dict(repo.commits[repo.branches[revision]])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, None, f"unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {value['path']}")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(prefix)}
            else:
                raise HubError(422, None, f"the stub Hub stores files inline only; got a {key!r} operation")
        sha = repo.commit(revision, files, header.get("summary", ""))
        return {"commitUrl": f"{self.repo_url(repo)}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}

    def info(self, repo: Repo, revision: str) -> dict:
        """Repo info (``model_info`` / ``repo_info``): id, sha and siblings."""
        sha = repo.resolve(revision)
        siblings = [{"rfilename": p, "size": len(d)} for p, d in sorted(repo.commits[sha].items())]
        info = {"id": repo.repo_id, "sha": sha, "private": repo.private, "siblings": siblings, "tags": []}
        return info | ({"modelId": repo.repo_id} if repo.repo_type == "model" else {})

    def tree(self, repo: Repo, revision: str, path: str, recursive: bool) -> list[dict]:
        """``list_repo_tree`` entries under ``path``: files (size, blob oid) and folders."""
        files = repo.commits[repo.resolve(revision)]
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        under = {p[len(prefix):]: d for p, d in files.items() if p.startswith(prefix)}
        if prefix and not under:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {revision}")
        entries: dict[str, dict] = {}
        for rest, data in sorted(under.items()):
            parts = rest.split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts) - 1) + 1):
                folder = prefix + "/".join(parts[:i])
                # A stable stand-in for the git tree id, which nothing on the client side checks.
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": git_blob_sha1(folder.encode())})
            if recursive or len(parts) == 1:
                entries[prefix + rest] = {"type": "file", "path": prefix + rest, "size": len(data),
                                          "oid": git_blob_sha1(data)}
        return list(entries.values())

    def refs(self, repo: Repo) -> dict:
        """``list_repo_refs``: the branches (no tags, converts or pull requests)."""
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in sorted(repo.branches.items())]
        return {"branches": branches, "tags": [], "converts": [], "pullRequests": []}


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the :class:`StubHub` held by the server."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    @property
    def hub(self) -> StubHub:
        return self.server.hub

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        """Silence the per-request stderr log."""

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, method: str = "GET") -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body()
        with self.hub.lock:
            self.hub.requests.append((method, url.path))
            try:
                self._route(method, url.path, parse_qs(url.query), body)
            except HubError as err:
                headers = err.headers | ({"X-Error-Code": err.code} if err.code else {})
                self._send(err.status, json.dumps({"error": err.message}).encode(), headers, method)
            except Exception as err:  # a malformed request: answer it, so the client fails with the reason
                self._send(500, json.dumps({"error": f"stub Hub: {err!r}"}).encode(), {}, method)

    def _require_token(self) -> None:
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            raise HubError(401, None, "Invalid credentials in Authorization header")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        hub, parts = self.hub, path.split("/")[1:]
        if parts[0] == "api":
            return self._route_api(method, parts[1:], query, body)
        prefix = parts[0] if parts[0] in ("datasets", "spaces") else None
        rest = parts[1:] if prefix else parts
        if method in ("GET", "HEAD") and len(rest) >= 5 and rest[2] == "resolve":
            repo = hub.get_repo(_TYPES[prefix] if prefix else "model", f"{unquote(rest[0])}/{unquote(rest[1])}")
            return self._resolve(method, repo, unquote(rest[3]), unquote("/".join(rest[4:])))
        self._unhandled(method, path)

    def _route_api(self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes) -> None:
        hub = self.hub
        if parts == ["repos", "create"] and method == "POST":
            self._require_token()
            return self._json(*hub.create_repo(json.loads(body)))
        if parts == ["validate-yaml"] and method == "POST":
            return self._json(200, {"errors": [], "warnings": []})
        if parts == ["whoami-v2"] and method == "GET":
            self._require_token()
            return self._json(200, {"type": "user", "name": hub.user, "orgs": [], "auth": {"type": "access_token"}})
        if len(parts) < 3 or parts[0] not in _TYPES:
            return self._unhandled(method, "/api/" + "/".join(parts))
        repo = hub.get_repo(_TYPES[parts[0]], f"{unquote(parts[1])}/{unquote(parts[2])}")
        action, args = (parts[3], [unquote(p) for p in parts[4:]]) if len(parts) > 3 else ("", [])
        if action == "preupload" and method == "POST" and len(args) == 1:
            self._require_token()
            return self._json(200, hub.preupload(repo, args[0], json.loads(body)))
        if action == "commit" and method == "POST" and len(args) == 1:
            self._require_token()
            return self._json(200, hub.commit(repo, args[0], body, bool(query.get("create_pr"))))
        if method != "GET":
            return self._unhandled(method, "/api/" + "/".join(parts))
        if action in ("", "revision") and len(args) == (1 if action else 0):
            return self._json(200, hub.info(repo, args[0] if args else "main"))
        if action == "tree" and args:
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return self._json(200, hub.tree(repo, args[0], "/".join(args[1:]), recursive))
        if action == "refs" and not args:
            return self._json(200, hub.refs(repo))
        self._unhandled(method, "/api/" + "/".join(parts))

    def _resolve(self, method: str, repo: Repo, revision: str, path: str) -> None:
        sha = repo.resolve(revision)
        files = repo.commits[sha]
        if path not in files:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {revision}", {"X-Repo-Commit": sha})
        data = files[path]
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": sha,
                   "ETag": f'"{git_blob_sha1(data)}"', "Accept-Ranges": "none"}
        self._send(200, data, headers, method)

    def _unhandled(self, method: str, path: str) -> None:
        self.hub.unhandled.append((method, path))
        self._json(501, {"error": f"the stub Hub does not implement {method} {path}"})


def _refuse_non_loopback(monkeypatch: pytest.MonkeyPatch, refused: list) -> None:
    """Make every IPv4/IPv6 socket connection to a non-loopback address fail, and record it in ``refused``."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                loopback = ipaddress.ip_address(address[0]).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                refused.append(address)
                raise ConnectionRefusedError(f"stub_hub: refused a connection to {address}; tests stay on loopback")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)

def use_stub_hub(monkeypatch: pytest.MonkeyPatch, hub: StubHub, cache_dir: str) -> None:
    """Point ``huggingface_hub`` and ``transformers`` at the running ``hub`` until ``monkeypatch`` is undone.

    Sets ``HF_ENDPOINT``, ``HF_HUB_OFFLINE=0`` and a dummy ``HF_TOKEN`` and patches what was read from them at
    import time: ``huggingface_hub.constants`` (endpoint, URL template, offline flag, cache, telemetry), the
    module-level ``HfApi`` behind ``huggingface_hub.upload_file`` & co, and transformers' cached ``HfApi``.
    ``cache_dir`` becomes the Hub download cache. Connections off loopback are refused and recorded in
    ``hub.refused``.
    """
    from huggingface_hub import constants, hf_api
    from transformers.utils import hub as transformers_hub

    url = hub.url
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {"127.0.0.1"})
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(hf_api.api, "endpoint", url)
    monkeypatch.setattr(transformers_hub, "_hf_api", None)
    _refuse_non_loopback(monkeypatch, hub.refused)


@pytest.fixture(name="stub_hub")
def stub_hub_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[StubHub]:
    """A started :class:`StubHub` that ``huggingface_hub`` and ``transformers`` talk to, with a fresh cache.

    Fails the test if anything tried to connect off loopback or sent the stub a request it does not implement.
    """
    with StubHub() as hub:
        use_stub_hub(monkeypatch, hub, str(tmp_path / "hub_cache"))
        yield hub
    assert not hub.refused, f"connections off loopback were attempted (and refused): {hub.refused}"
    assert not hub.unhandled, f"requests the stub Hub does not implement: {hub.unhandled}"
