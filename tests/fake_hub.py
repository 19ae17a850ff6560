"""A local stand-in for the few Hugging Face Hub routes `pad publish` uses, for the real huggingface_hub client.

`FakeHub()` serves on 127.0.0.1 (point the client at it with HF_ENDPOINT and HF_HUB_DISABLE_XET=1):
create repo, list the tree, validate YAML, preupload, the LFS batch API and basic PUT uploads, and the
NDJSON commit. It keeps the repository's files in memory, every request it saw, and how often each LFS
object was sent. `hang_on_commit = n` makes the n-th commit request wait (unanswered, not applied) until
`release()`: the test kills the client meanwhile, as a crash in the middle of an upload.
"""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self):
        self.files: dict[str, dict] = {}          # path -> {"size", "oid", "lfs": sha256 | None, "data"}
        self.lfs: dict[str, bytes] = {}           # sha256 -> content
        self.puts: dict[str, int] = {}            # sha256 -> times its content was PUT
        self.requests: list[dict] = []            # method, path, authorization, body
        self.commits: list[list[str]] = []        # paths of each applied commit
        self.commit_requests = 0
        self.hang_on_commit: int | None = None
        self.commit_arrived = threading.Event()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    # routes ---------------------------------------------------------------------------------------
    def tree(self) -> list[dict]:
        out = []
        for path, f in sorted(self.files.items()):
            item = {"type": "file", "path": path, "size": f["size"], "oid": f["oid"]}
            if f["lfs"]:
                item["lfs"] = {"oid": f["lfs"], "size": f["size"], "pointerSize": 134}
            out.append(item)
        return out

    def preupload(self, body: dict) -> dict:
        files = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith((".tar", ".parquet", ".png"))
                  else "regular", "shouldIgnore": False} for f in body["files"]]
        return {"files": files}

    def lfs_batch(self, body: dict) -> dict:
        objects = []
        for o in body["objects"]:
            entry = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.lfs:
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{o['oid']}"}}
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def put(self, oid: str, data: bytes) -> int:
        if hashlib.sha256(data).hexdigest() != oid:
            return 400
        self.puts[oid] = self.puts.get(oid, 0) + 1
        self.lfs[oid] = data
        return 200

    def commit(self, repo: str, body: bytes) -> tuple[int, dict]:
        self.commit_requests += 1
        if self.hang_on_commit == self.commit_requests:
            self.commit_arrived.set()
            self._release.wait(60)
            return 500, {"error": "interrupted"}
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        paths = []
        for item in lines:
            v = item["value"]
            if item["key"] == "file":
                data = base64.b64decode(v["content"])
                self.files[v["path"]] = {"size": len(data), "oid": _git_oid(data), "lfs": None, "data": data}
            elif item["key"] == "lfsFile":
                if v["oid"] not in self.lfs:
                    return 422, {"error": f"LFS object {v['oid']} was never uploaded"}
                data = self.lfs[v["oid"]]
                self.files[v["path"]] = {"size": len(data), "oid": _git_oid(data), "lfs": v["oid"], "data": data}
            else:
                continue
            paths.append(v["path"])
        self.commits.append(paths)
        n = len(self.commits)
        url = f"{self.url}/datasets/{repo}/commit/{n:040d}"
        return 200, {"commitUrl": url, "commitOid": f"{n:040d}", "pullRequestUrl": None}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, payload) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            body = _read_body(self)
            path = urlparse(self.path).path
            hub.requests.append({"method": method, "path": path, "authorization": self.headers.get("Authorization"),
                                 "body": body})
            if method == "POST" and path == "/api/repos/create":
                req = json.loads(body)
                return self._reply(200, {"url": f"{hub.url}/datasets/{req.get('organization')}/{req['name']}"})
            if method == "POST" and path == "/api/validate-yaml":
                return self._reply(200, {"errors": [], "warnings": []})
            if method == "GET" and "/tree/" in path:
                return self._reply(200, hub.tree())
            if method == "POST" and "/preupload/" in path:
                return self._reply(200, hub.preupload(json.loads(body)))
            if method == "POST" and path.endswith(".git/info/lfs/objects/batch"):
                return self._reply(200, hub.lfs_batch(json.loads(body)))
            if method == "PUT" and path.startswith("/lfs-upload/"):
                return self._reply(hub.put(path.rsplit("/", 1)[1], body), {})
            if method == "POST" and "/commit/" in path:
                return self._reply(*hub.commit(path.split("/api/datasets/", 1)[1].split("/commit/")[0], body))
            return self._reply(404, {"error": f"fake hub: no route {method} {path}"})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

    return Handler
