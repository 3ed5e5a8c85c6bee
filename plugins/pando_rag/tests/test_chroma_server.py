"""Team mode: a real `chroma run` server on loopback, started and stopped by pid."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _chroma_bin():
    found = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(found).exists():
        if os.environ.get("CI"):
            raise AssertionError("the chroma CLI (chromadb) is not installed")
        pytest.skip("the chroma CLI is not installed (pip install chromadb)")
    return found


@pytest.fixture
def chroma_server(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [_chroma_bin(), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("chroma run did not start") from None
            time.sleep(0.1)
    yield url
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)


def test_two_engines_share_one_chroma_server(chroma_server, make_engine, wordllama_embedder, tmp_path):
    first = make_engine(embedder=wordllama_embedder, chroma_url=chroma_server, chroma_namespace="team", data_dir=tmp_path / "a")
    first.kb.add("pool.md", "Connection pools keep database sockets open.")
    assert first.vectors.location == chroma_server
    assert not (tmp_path / "a" / "chroma").exists()  # nothing local: the vectors live on the server
    second = make_engine(embedder=wordllama_embedder, chroma_url=chroma_server, chroma_namespace="team", data_dir=tmp_path / "b")
    assert second.vectors.count("kb") == 1 and first.vectors.name("kb") == "pando_kb_team_wordllama_l2_supercat_256"
    hits = second.vectors.query("kb", wordllama_embedder.embed_query("database socket pool").tolist(), 1)
    assert hits[0][0] == "pool.md#0"


def test_a_chroma_server_that_is_down_is_one_line(make_engine, wordllama_embedder):
    from pando_core.errors import UnavailableError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UnavailableError, match=f"chroma server http://127.0.0.1:{port} cannot be reached"):
        make_engine(embedder=wordllama_embedder, chroma_url=f"http://127.0.0.1:{port}")


def test_working_directories_get_their_own_collections_on_a_server(chroma_server, make_engine, hashing_embedder, tmp_path):
    from pando_rag.config import RagConfig
    from pando_rag.engine import RagEngine

    engines = []
    for name in ("one", "two"):
        workdir = tmp_path / name
        engine = RagEngine(RagConfig.from_dict({"chroma_url": chroma_server}, workdir=workdir), workdir / ".pando" / "rag", embedder=hashing_embedder)
        engines.append(engine)
        engine.kb.add("README.md", f"readme of {name}")
    try:
        assert engines[0].vectors.name("kb") != engines[1].vectors.name("kb")
        assert [e.vectors.count("kb") for e in engines] == [1, 1]  # the same key, no overwrite
    finally:
        for engine in engines:
            engine.close()
