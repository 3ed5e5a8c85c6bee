"""`pando serve` over real HTTP: a real server process on 127.0.0.1, real `pando run` processes
writing the same database, the scripted model server, httpx as the client."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import httpx
import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from pando_core.testing.web import ThreadedWebServer, WebServerProcess

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]
DEADLINE_S = 30.0


def sse_events(response: httpx.Response):
    """The JSON objects of a server-sent event stream, as they arrive."""
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []


def poll(check, what: str, deadline: float = DEADLINE_S):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(pando_workdir, pando_env, model_server, tmp_path):
    write_model_config(pando_workdir, model_server.base_url)
    with WebServerProcess(pando_workdir, pando_env, log_path=tmp_path / "serve.log") as running:
        yield running


def client(server, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=DEADLINE_S, **kwargs)


@contextlib.contextmanager
def browser(server):
    """A client that behaves like a page of the server: it has the CSRF cookie and sends it back."""
    with client(server, headers={"origin": server.url.rstrip("/")}) as c:
        c.get("/sessions")
        c.headers["x-csrf-token"] = c.cookies["pando_csrf"]
        yield c


@pytest.mark.slow
def test_a_session_written_by_pando_run_appears_in_the_list_and_the_event_stream(server, pando_workdir, pando_env, model_server):
    model_server.add_rule(contains="hello", response=Reply.text("hi there"))
    with client(server) as c:
        assert c.get("/api/sessions").json()["sessions"] == []
        with c.stream("GET", "/api/events") as events:
            run = subprocess.run([*PANDO, "run", "-f", "json", "hello web"], cwd=pando_workdir, env=pando_env,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            session_id = json.loads(run.stdout)["session_id"]
            for event in sse_events(events):
                if event.get("type") == "change" and event["table"] == "sessions" and session_id in event["ids"]:
                    break
        listed = c.get("/api/sessions").json()["sessions"]
        assert [(s["id"], s["title"]) for s in listed] == [(session_id, "hello web")]
        detail = c.get(f"/api/sessions/{session_id}").json()
        texts = [p["data"].get("text") for m in detail["messages"] for p in m["parts"] if p["type"] == "text"]
        assert texts == ["hello web", "hi there"]
        page = c.get("/sessions").text
        assert "hello web" in page and f"/sessions/{session_id}" in page


@pytest.mark.slow
def test_a_prompt_streams_the_events_of_stream_json_and_is_stored(server, model_server):
    model_server.script(Reply.text("streamed answer", chunk_size=3))
    with browser(server) as c:
        with c.stream("POST", "/api/sessions", json={"prompt": "say something"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            session_id = response.headers["x-pando-session"]
            events = list(sse_events(response))
        deltas = [e["text"] for e in events if e["type"] == "text_delta"]
        assert len(deltas) > 1 and "".join(deltas) == "streamed answer"
        assert all(e["session_id"] == session_id for e in events)
        result = events[-1]
        assert result["type"] == "result" and result["status"] == "success" and result["response"] == "streamed answer"
        stored = c.get(f"/api/sessions/{session_id}").json()
        assert stored["session"]["title"] == "say something" and len(stored["messages"]) == 2


@pytest.mark.slow
def test_a_permission_is_asked_on_the_stream_and_answered_over_the_api(server, model_server, pando_workdir):
    model_server.script(Reply.tool("write", {"file_path": "note.txt", "content": "from the web\n"}), Reply.text("written"))
    with browser(server) as c:
        with c.stream("POST", "/api/sessions", json={"prompt": "write a note"}) as response:
            events = []
            for event in sse_events(response):
                events.append(event)
                if event["type"] == "permission_request":
                    assert event["tool"] == "write"
                    assert c.get("/api/permissions").json()[0]["id"] == event["id"]
                    bad = c.post(f"/api/permissions/{event['id']}", json={"answer": "maybe"})
                    assert bad.status_code == 400
                    assert c.post(f"/api/permissions/{event['id']}", json={"answer": "once"}).status_code == 200
        assert [e["type"] for e in events if e["type"] in ("permission_request", "tool_result", "result")] == [
            "permission_request", "tool_result", "result"]
        assert events[-1]["status"] == "success"
        assert (pando_workdir / "note.txt").read_text() == "from the web\n"
        assert c.get("/api/permissions").json() == []


@pytest.mark.slow
def test_rename_export_and_delete_a_session(server, model_server):
    model_server.script(Reply.text("ok"))
    with browser(server) as c:
        with c.stream("POST", "/api/sessions", json={"prompt": "first"}) as response:
            session_id = response.headers["x-pando-session"]
            list(sse_events(response))
        renamed = c.patch(f"/api/sessions/{session_id}", json={"title": "Renamed from the web"})
        assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed from the web"
        assert c.patch(f"/api/sessions/{session_id}", json={"title": " "}).status_code == 400
        exported = c.get(f"/api/sessions/{session_id}/export?format=json").json()
        assert exported["format"] == "pando-session" and exported["session"]["title"] == "Renamed from the web"
        markdown = c.get(f"/api/sessions/{session_id}/export?format=markdown").text
        assert markdown.startswith("# Renamed from the web\n") and "first" in markdown
        assert c.delete(f"/api/sessions/{session_id}").json() == {"deleted": session_id}
        missing = c.get(f"/api/sessions/{session_id}")
        assert missing.status_code == 404 and "not found" in missing.json()["error"]


@pytest.mark.slow
def test_sessions_are_paged(pando_workdir, pando_env, model_server, make_app, tmp_path):
    app = make_app(model_server=model_server)
    for index in range(7):
        session = app.sessions.create(title=f"session {index}")
        app.messages.create(session["id"], "user", [{"type": "text", "data": {"text": "x"}}])
    app.shutdown()
    with WebServerProcess(pando_workdir, pando_env, log_path=tmp_path / "serve.log") as server, client(server) as c:
        first = c.get("/api/sessions?limit=3").json()
        assert [s["title"] for s in first["sessions"]] == ["session 6", "session 5", "session 4"]
        assert first["next_offset"] == 3
        last = c.get("/api/sessions?limit=3&offset=6").json()
        assert [s["title"] for s in last["sessions"]] == ["session 0"] and last["next_offset"] is None
        assert c.get("/api/sessions?limit=x").status_code == 400


def test_status_instances_plugins_and_the_openapi_schema(server):
    with client(server) as c:
        status = c.get("/api/status").json()
        assert status["role"] == "primary" and status["workdir"] and status["instances"] >= 1
        assert any(row["is_primary"] for row in c.get("/api/instances").json())
        assert isinstance(c.get("/api/plugins").json(), list)
        schema = c.get("/api/openapi.json").json()
        assert schema["openapi"].startswith("3.")
        paths = schema["paths"]
        assert {"get", "patch", "delete"} <= set(paths["/api/sessions/{id}"])
        assert "post" in paths["/api/sessions/{id}/prompt"] and "post" in paths["/api/permissions/{id}"]
        assert paths["/api/sessions/{id}/prompt"]["post"]["requestBody"]["content"]["application/json"]
        assert "Status" in c.get("/status").text


# -- who may use it ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_with_a_token_the_api_answers_401_and_pages_the_login_form(pando_workdir, pando_env, tmp_path):
    env = dict(pando_env, PANDO_WEB_TOKEN="s3cret-token")
    with WebServerProcess(pando_workdir, env, log_path=tmp_path / "serve.log") as server:
        with client(server) as c:
            refused = c.get("/api/sessions")
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert "unauthorized" in refused.json()["error"]
            assert c.get("/api/sessions", headers={"authorization": "Bearer wrong"}).status_code == 401
            login_page = c.get("/sessions")
            assert login_page.status_code == 401 and 'action="/login"' in login_page.text
            assert c.get("/api/sessions", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        with client(server, headers={"origin": server.url.rstrip("/")}) as page:
            page.get("/login")
            wrong = page.post("/login", data={"token": "nope", "csrf_token": page.cookies["pando_csrf"]})
            assert wrong.status_code == 401 and "not the token" in wrong.text
            right = page.post("/login", data={"token": "s3cret-token", "csrf_token": page.cookies["pando_csrf"]})
            assert right.status_code == 303 and "s3cret-token" not in right.headers["set-cookie"]
            assert page.get("/sessions").status_code == 200
            assert page.get("/api/sessions").status_code == 200
        with client(server, headers={"origin": "http://evil.example"}) as forged:
            assert forged.post("/login", data={"token": "s3cret-token"}).status_code == 403


def test_beyond_loopback_without_a_token_it_refuses_to_start(pando_workdir, pando_env):
    proc = subprocess.run([*PANDO, "serve", "--host", "0.0.0.0", "--port", "0"], cwd=pando_workdir, env=pando_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pando: error: serving on 0.0.0.0 (beyond loopback) needs a token: set [web] token or PANDO_WEB_TOKEN"]


@pytest.mark.slow
def test_a_forged_cross_site_post_is_refused(server, model_server):
    model_server.script(Reply.text("ok"))
    with browser(server) as c:
        with c.stream("POST", "/api/sessions", json={"prompt": "keep me"}) as response:
            session_id = response.headers["x-pando-session"]
            list(sse_events(response))
        cookie = {"pando_csrf": c.cookies["pando_csrf"]}
        # another site's form: the browser sends the cookie and its own origin, but cannot know the token
        with client(server, cookies=cookie, headers={"origin": "http://evil.example"}) as forged:
            refused = forged.post(f"/sessions/{session_id}/delete", data={"csrf_token": "guess"})
            assert refused.status_code == 403 and "cross-site" in refused.text
            refused = forged.post(f"/sessions/{session_id}/delete", data={"csrf_token": cookie["pando_csrf"]})
            assert refused.status_code == 403
        with client(server, cookies=cookie, headers={"origin": server.url.rstrip("/")}) as same_origin:
            refused = same_origin.post(f"/sessions/{session_id}/delete", data={})
            assert refused.status_code == 403 and "CSRF" in refused.text
        with client(server, cookies=cookie, headers={"sec-fetch-site": "cross-site"}) as no_origin:
            assert no_origin.post(f"/sessions/{session_id}/delete", data={}).status_code == 403
        # DNS rebinding: a page of another name resolved to 127.0.0.1 is not answered at all
        assert c.get("/api/sessions", headers={"host": "evil.example"}).status_code == 403
        assert c.get(f"/api/sessions/{session_id}").status_code == 200  # still there
        accepted = c.post(f"/sessions/{session_id}/delete", data={"csrf_token": c.cookies["pando_csrf"]})
        assert accepted.status_code == 303
        assert c.get(f"/api/sessions/{session_id}").status_code == 404


def test_without_the_web_extra_a_one_line_error(pando_workdir, pando_env):
    code = "import sys; sys.modules['starlette'] = None; from pando_core.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, "--plugins", "none", "serve"], cwd=pando_workdir, env=pando_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pando: error: pando serve needs the web extra: pip install 'pando-core[web]'"


# -- the plugin hook --------------------------------------------------------------------------------


class GreetingsPlugin:
    """A plugin adding a page and an API route through pando_web_routes."""

    from pando_core import hookimpl

    @hookimpl
    def pando_web_routes(self, app):
        from starlette.routing import Route

        from pando_core.web import WebRoutes
        from pando_core.web.kit import JSONResponse, escape, page

        def greetings(request):
            return page(request, "Greetings", f"<p>{escape(str(app.workdir.name))} says hello</p>")

        def greetings_json(request):
            """Greetings as JSON."""
            return JSONResponse({"hello": app.role})

        return WebRoutes(routes=[Route("/greetings", greetings), Route("/api/greetings", greetings_json)],
                         nav={"Greetings": "/greetings"})


class BrokenWebPlugin:
    from pando_core import hookimpl

    @hookimpl
    def pando_web_routes(self, app):
        raise RuntimeError("no routes today")


def test_hook_pando_web_routes(make_app, model_server):
    from pando_core.web.application import WebServer, build
    from pando_core.web.live import LiveHub
    from pando_core.web.turns import PermissionBroker

    app = make_app(model_server=model_server, extra_plugins={"greetings": GreetingsPlugin(), "broken": BrokenWebPlugin()})
    hub = LiveHub()
    web = WebServer(app, token="", hub=hub, broker=PermissionBroker(hub))
    with ThreadedWebServer(build(web)) as running, httpx.Client(base_url=running.url, timeout=DEADLINE_S) as c:
        greeting = c.get("/greetings")
        assert greeting.status_code == 200 and "says hello" in greeting.text
        assert '<a href="/greetings">Greetings</a>' in c.get("/sessions").text
        assert c.get("/api/greetings").json() == {"hello": "primary"}
        schema = c.get("/api/openapi.json").json()
        assert schema["paths"]["/api/greetings"]["get"]["summary"] == "Greetings as JSON."
    broken = {info.name: info for info in app.plugins.list()}["broken"]
    assert "no routes today" in str(broken.hook_errors["pando_web_routes"])


def test_sigterm_ends_open_streams_and_the_server_exits_cleanly(pando_workdir, pando_env, tmp_path):
    server = WebServerProcess(pando_workdir, pando_env, log_path=tmp_path / "serve.log").start()
    try:
        with client(server) as c, c.stream("GET", "/api/events") as events:
            next(events.iter_lines())  # the stream is open
            started = time.monotonic()
            assert server.stop() == 0
            assert time.monotonic() - started < 15
    finally:
        server.stop()
    assert "Traceback" not in server.output()


@pytest.mark.slow
def test_the_server_survives_a_failover(pando_workdir, pando_env, model_server, pando_instance, tmp_path):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.set_default("echo")
    primary = pando_instance()
    session_id = primary.eval("s = app.sessions.create(title='before'); app.messages.create(s['id'], 'user', [{'type': 'text', 'data': {'text': 'x'}}]); result = s['id']")
    with WebServerProcess(pando_workdir, pando_env, log_path=tmp_path / "serve.log") as server, client(server) as c:
        assert server.role == "secondary" and c.get("/api/status").json()["role"] == "secondary"
        assert [s["id"] for s in c.get("/api/sessions").json()["sessions"]] == [session_id]
        primary.kill()  # SIGKILL: the server takes over
        poll(lambda: c.get("/api/status").json()["role"] == "primary", "the server's promotion")
        with c.stream("GET", "/api/events") as events:
            assert c.patch(f"/api/sessions/{session_id}", json={"title": "after"}).json()["title"] == "after"
            for event in sse_events(events):
                if event.get("type") == "change" and session_id in event.get("ids", []):
                    break
        run = subprocess.run([*PANDO, "run", "-f", "json", "written after the failover"], cwd=pando_workdir, env=pando_env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        titles = poll(lambda: [s["title"] for s in c.get("/api/sessions").json()["sessions"] if s["title"] != "after"] or None,
                      "the new session")
        assert titles == ["written after the failover"]


@pytest.mark.slow
def test_interrupt_cancels_a_streaming_turn(server, model_server):
    model_server.script(Reply.text("word " * 400, chunk_size=5, chunk_delay=0.05))
    with browser(server) as c, c.stream("POST", "/api/sessions", json={"prompt": "talk for a while"}) as response:
        session_id = response.headers["x-pando-session"]
        events = []
        for event in sse_events(response):
            events.append(event)
            if event["type"] == "text_delta" and len(events) == 3:
                assert c.post(f"/api/sessions/{session_id}/interrupt").json() == {"interrupted": session_id}
        assert events[-1]["type"] == "result" and events[-1]["status"] == "cancelled"
