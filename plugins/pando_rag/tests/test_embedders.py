"""The HTTP embedders against a real HTTP server on loopback that speaks the OpenAI and Ollama
embedding protocols (its vectors come from the real wordllama model), and against a port where
nothing listens."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from pando_rag.embedders import EmbedderError, OllamaEmbedder, OpenAIEmbedder


@pytest.fixture
def embedding_server(wordllama_embedder):
    state = {"dimension": None, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append((self.path, body, self.headers.get("Authorization")))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = wordllama_embedder.embed_documents(texts)
            if state["dimension"]:
                vectors = vectors[:, : state["dimension"]]
            if self.path == "/v1/embeddings":
                answer = {"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}
            elif self.path == "/api/embed":
                answer = {"embeddings": [v.tolist() for v in vectors]}
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_openai_embedder_batches_and_normalises(embedding_server):
    embedder = OpenAIEmbedder(embedding_server["url"] + "/v1", "sk-test", batch_size=2)
    vectors = embedder.embed_documents(["a b", "c d", "e f"])
    assert vectors.shape == (3, 256) and embedder.dimension == 256
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [len(body["input"]) for _, body, _ in embedding_server["requests"]] == [2, 1]
    assert embedding_server["requests"][0][2] == "Bearer sk-test"


def test_ollama_embedder_and_a_dimension_change_is_refused(embedding_server):
    embedder = OllamaEmbedder(embedding_server["url"] + "/api")
    assert embedder.embed_query("hello").shape == (256,)
    embedding_server["dimension"] = 100
    with pytest.raises(EmbedderError, match="100-dimensional vectors, expected 256"):
        embedder.embed_documents(["x"])


def test_a_server_that_is_down_is_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OllamaEmbedder(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(EmbedderError) as caught:
        embedder.embed_query("x")
    assert "cannot reach" in str(caught.value) and "\n" not in str(caught.value)


def test_openai_needs_a_key():
    from pando_core.errors import PandoError

    with pytest.raises(PandoError, match="needs an API key"):
        OpenAIEmbedder("http://127.0.0.1:1", "")


def test_a_failed_embedding_writes_nothing(make_engine, embedding_server):
    from pando_rag.embedders import OpenAIEmbedder as Real

    engine = make_engine(embedder=Real(embedding_server["url"], "k"))
    engine.kb.add("a.md", "first version")
    embedding_server["dimension"] = 64
    with pytest.raises(EmbedderError):
        engine.kb.add("a.md", "second version " * 300)
    assert engine.kb.get("a.md")["content"] == "first version"
    assert engine.counts()["kb"]["rows"] == engine.counts()["kb"]["vectors"] == 1
