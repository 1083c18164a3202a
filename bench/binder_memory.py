"""Memory of a Binder session: JupyterLab plus a kernel that chatted and embedded.

What it measures
    Starts JupyterLab (no browser) and, through JupyterLab's own REST API, a Python kernel
    like the one a notebook gets; the kernel connects to the embedded backend, chats once
    with the default model (or DSKIT_MODEL) and, unless `--no-embedder`, embeds a sentence with
    the local MiniLM model (on llama.cpp); with `--kb`, it instead builds a knowledge base of the
    sample corpus (dskit/data/sample_kb) and searches it once, which also loads pandas, the file
    loaders, dskit's splitter and BM25. Then it prints the resident memory (RSS) of the server,
    of the kernel and their sum, with the kernel's peak, against Binder's limit of about 2 GB.

    Run it under binder/start's environment: `binder/start python bench/binder_memory.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
import psutil

CODE = """
import json, resource, dskit as ds
client = ds.connect()
reply = client.chat("熊猫吃什么？请简短回答。", max_tokens=64, think=True)
if {kb}:
    import tempfile
    from importlib.resources import files
    kb = ds.KnowledgeBase("memory", data_dir=tempfile.mkdtemp())
    kb.add(str(files("dskit") / "data" / "sample_kb"), progress=False)
    kb.search("冲泡龙井用多少度的水？")
elif {embed}:
    from dskit.embeddings import get_embedder
    get_embedder().embed(["a sentence to embed"])
print("DSKIT" + json.dumps({{"model": client.default_model, "backend": client.name,
      "answer": reply.answer[:40], "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""

MB = 1024 * 1024


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _execute(url: str, token: str, kernel: str, code: str, timeout: float = 900) -> str:
    """Run `code` in the kernel over its websocket; return its stdout."""
    from websockets.sync.client import connect

    msg_id = uuid.uuid4().hex
    msg = {"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "bench",
                      "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
           "parent_header": {}, "metadata": {}, "channel": "shell",
           "content": {"code": code, "silent": False, "store_history": False,
                       "user_expressions": {}, "allow_stdin": False}}
    ws_url = url.replace("http", "ws", 1) + f"api/kernels/{kernel}/channels?token={token}"
    out: list[str] = []
    with connect(ws_url, open_timeout=30, max_size=None) as ws:
        ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise RuntimeError(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
    raise TimeoutError("the kernel did not finish")


def main() -> int:
    """Start the server and a kernel, chat, embed, print RSS numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-embedder", action="store_true", help="skip the MiniLM embedder")
    parser.add_argument("--kb", action="store_true",
                        help="build a knowledge base of the sample corpus and search it")
    args = parser.parse_args()
    port, token = _port(), secrets.token_hex(8)
    url = f"http://127.0.0.1:{port}/"
    root = tempfile.mkdtemp(prefix="binder-memory-")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        api = httpx.Client(base_url=url, params={"token": token}, timeout=30)
        for _ in range(240):  # the server needs a few seconds to start
            try:
                if api.get("api/status").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        idle = psutil.Process(server.pid).memory_info().rss
        kernel = api.post("api/kernels", json={"name": "python3"}).json()["id"]
        api.get("lab")  # the page JupyterLab serves to a browser, as a session would load it
        printed = _execute(url, token, kernel,
                           CODE.format(embed=not args.no_embedder, kb=args.kb))
        facts = json.loads(printed.split("DSKIT", 1)[1].splitlines()[0])
        server_rss = psutil.Process(server.pid).memory_info().rss
        kernels = psutil.Process(server.pid).children(recursive=True)
        kernel_rss = sum(p.memory_info().rss for p in kernels)
        what = ("knowledge-base search" if args.kb
                else "no" if args.no_embedder else "MiniLM (one sentence)")
        print(f"model {facts['model']} on {facts['backend']}; embedder: {what}; "
              f"answer: {facts['answer']!r}")
        print(f"JupyterLab server: {idle / MB:.0f} MB idle, {server_rss / MB:.0f} MB after")
        print(f"kernel:            {kernel_rss / MB:.0f} MB now, "
              f"{facts['peak_kb'] / 1024:.0f} MB peak")
        total = server_rss + kernel_rss
        print(f"total:             {total / MB:.0f} MB of about 2048 MB on public Binder")
        return 0 if total < 2048 * MB else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    sys.exit(main())
