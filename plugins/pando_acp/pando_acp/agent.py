"""The ACP agent: every request an editor sends to ``pando acp``, answered with a pando App.

An ACP session is a pando session (the same id); a prompt is one ``app.coder_agent.run`` turn whose
events stream back as session updates (see turn.py). The App is an ordinary pando instance,
primary or secondary, so an editor and a terminal share sessions and a failover of the primary is
survived like anywhere else. Errors reach the editor as JSON-RPC errors with a one-line message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import acp
from acp import RequestError
from acp.schema import (
    AgentCapabilities,
    ClientCapabilities,
    CloseSessionResponse,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionCloseCapabilities,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionInfo,
    SessionInfoUpdate,
    SessionListCapabilities,
    SessionMode,
    SessionModeState,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
    Usage,
)

from pando_core.errors import one_line

from . import updates
from .commands import Command, build_commands, split_command
from .prompt_content import prompt_content
from .session_mcp import SessionServers
from .turn import CURRENT_TURN, MODES, SessionState, Turn

log = logging.getLogger("pando.acp")

MODE_KEY = "acp_mode"  # session_state key of the mode set with session/set_mode
PAGE_SIZE = 50
UNTITLED = "Editor session"  # until its first prompt names it


def invalid_params(message: str) -> RequestError:
    return RequestError(-32602, message)


def not_found(message: str) -> RequestError:
    return RequestError(-32002, message)


def internal(message: str) -> RequestError:
    return RequestError(-32603, message)


def configured_models(config: Any, current: str | None) -> list[str]:
    """``provider/model`` for every model of ``[providers.*]``, the configured default first."""
    refs: list[str] = []
    if current:
        refs.append(current)
    agent_model = config.section("agent").get("model")
    if agent_model:
        refs.append(agent_model)
    for provider, table in (config.section("providers") or {}).items():
        table = table or {}
        if table.get("default_model"):
            refs.append(f"{provider}/{table['default_model']}")
        refs.extend(f"{provider}/{model}" for model in table.get("models") or {})
    return list(dict.fromkeys(refs))


def _iso(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class PandoAgent:
    """The ``acp.Agent`` of ``pando acp``."""

    def __init__(self, app: Any, *, default_mode: str = "ask", allow_yolo: bool = False, version: str = "0") -> None:
        self.app = app
        self.workdir = Path(app.workdir).resolve()
        self.default_mode = default_mode
        self.allow_yolo = allow_yolo
        self.version = version
        self.client: Any = None
        self.transport: Any = None  # the FrameTransport, for updates written straight from a turn
        self.capabilities = ClientCapabilities()
        self.sessions: dict[str, SessionState] = {}
        self._commands: dict[str, Command] | None = None
        self._background: set[asyncio.Future] = set()

    def on_connect(self, conn: Any) -> None:
        self.client = conn

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def modes(self) -> list[str]:
        return [m for m in MODES if m != "yolo" or self.allow_yolo]

    def _mode_state(self, state: SessionState) -> SessionModeState:
        return SessionModeState(
            current_mode_id=state.mode,
            available_modes=[SessionMode(id=m, name=m, description=MODES[m]) for m in self.modes],
        )

    def _model(self, state: SessionState) -> str:
        from pando_core.agent.models import resolve_model

        try:
            return resolve_model(self.app.config, state.model or self.app.model_ref).ref
        except Exception:  # noqa: BLE001 - no model configured: the prompt says so
            return state.model or ""

    def _config_options(self, state: SessionState) -> list[Any]:
        current_model = self._model(state)
        models = configured_models(self.app.config, current_model)
        options = [
            SessionConfigOptionSelect(
                type="select",
                id="mode",
                name="Mode",
                category="mode",
                current_value=state.mode,
                options=[SessionConfigSelectOption(value=m, name=m, description=MODES[m]) for m in self.modes],
            )
        ]
        if models:
            options.append(
                SessionConfigOptionSelect(
                    type="select",
                    id="model",
                    name="Model",
                    category="model",
                    current_value=current_model or models[0],
                    options=[SessionConfigSelectOption(value=m, name=m) for m in models],
                )
            )
        return options

    def _models_field(self, state: SessionState) -> dict[str, Any]:
        """The ``models`` member editors of the set_model era (Zed) read from new/load responses."""
        current = self._model(state)
        models = configured_models(self.app.config, current)
        if not models:
            return {}
        return {
            "models": {
                "currentModelId": current or models[0],
                "availableModels": [{"modelId": m, "name": m} for m in models],
            }
        }

    def _session_response(self, model: Any, state: SessionState) -> dict[str, Any]:
        payload = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        payload.update(self._models_field(state))
        return payload

    def _state(self, session_id: str) -> SessionState:
        state = self.sessions.get(session_id)
        if state is None:
            raise not_found(f"unknown session {session_id!r}: create it with session/new or load it with session/load")
        return state

    def _takes_images(self, model: str | None) -> bool:
        """Whether ``model`` (else the configured one) accepts images (its ``images`` capability)."""
        from pando_core.agent.models import resolve_model

        try:
            return bool(resolve_model(self.app.config, model or self.app.model_ref).info.accepts_images)
        except Exception:  # noqa: BLE001 - no model configured: no images either
            return False

    def _check_cwd(self, cwd: str) -> None:
        wanted = Path(cwd).expanduser().resolve()
        if wanted != self.workdir and self.workdir not in wanted.parents:
            raise invalid_params(f"pando acp serves {self.workdir}; start it there to work in {wanted} (pando --cwd DIR acp)")

    def _later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- initialize ------------------------------------------------------------------------------

    async def initialize(self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None, **_: Any) -> InitializeResponse:
        self.capabilities = client_capabilities or ClientCapabilities()
        name = getattr(client_info, "name", "an ACP client")
        log.info("client %s, protocol %s, capabilities %s", name, protocol_version, self.capabilities.model_dump(exclude_none=True))
        return InitializeResponse(
            protocol_version=min(protocol_version, acp.PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=True,
                # images when the configured model takes them (a session may switch to one that does not:
                # its image prompts are then refused with the reason); audio never
                prompt_capabilities=PromptCapabilities(image=self._takes_images(None), audio=False, embedded_context=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities(), close=SessionCloseCapabilities()),
            ),
            agent_info=Implementation(name="pando", title="Pando", version=self.version),
            auth_methods=[],
        )

    async def authenticate(self, method_id: str, **_: Any) -> None:
        raise invalid_params("pando needs no authentication (its providers' keys are in its configuration)")

    # -- sessions --------------------------------------------------------------------------------

    async def new_session(self, cwd: str, mcp_servers: Any = None, **_: Any) -> dict[str, Any]:
        self._check_cwd(cwd)
        session = self.app.sessions.create(title=UNTITLED)
        state = SessionState(session["id"], mode=self.default_mode, model=self.app.model_ref)
        self.sessions[state.id] = state
        state.mcp = SessionServers.start(self.app, mcp_servers, "the editor (session/new)")
        self._later(self._announce_commands(state))
        response = NewSessionResponse(session_id=state.id, modes=self._mode_state(state), config_options=self._config_options(state))
        return self._session_response(response, state)

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None, **_: Any) -> dict[str, Any]:
        from pando_core.errors import NotFoundError

        self._check_cwd(cwd)
        try:
            session = self.app.sessions.restore(session_id)
        except NotFoundError:
            raise not_found(f"no session {session_id!r} in {self.workdir}") from None
        state = self.sessions.get(session["id"]) or SessionState(
            session["id"], mode=self._stored_mode(session["id"]), model=session.get("model") or self.app.model_ref
        )
        self.sessions[state.id] = state
        if state.mcp is not None:  # loaded again: the servers named now replace those of before
            await asyncio.to_thread(state.mcp.close)
        state.mcp = SessionServers.start(self.app, mcp_servers, "the editor (session/load)")
        for update in updates.replay(self.workdir, self.app.messages.list(state.id)):
            await self.client.session_update(state.id, update)
        self._later(self._announce_commands(state))
        response = LoadSessionResponse(modes=self._mode_state(state), config_options=self._config_options(state))
        return self._session_response(response, state)

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None, **_: Any) -> ListSessionsResponse:
        if cwd:
            self._check_cwd(cwd)
        try:
            start = int(cursor or 0)
        except ValueError:
            raise invalid_params(f"invalid cursor {cursor!r}") from None
        rows = self.app.sessions.list()
        page = rows[start : start + PAGE_SIZE]
        return ListSessionsResponse(
            sessions=[
                SessionInfo(session_id=r["id"], cwd=str(self.workdir), title=r.get("title"), updated_at=_iso(r.get("updated_at")))
                for r in page
            ],
            next_cursor=str(start + PAGE_SIZE) if start + PAGE_SIZE < len(rows) else None,
        )

    async def close_session(self, session_id: str, **_: Any) -> CloseSessionResponse:
        """The editor is done with the session: its turn is cancelled (and stored), its MCP servers
        stopped, the pando session ended; a later prompt to it is an unknown session."""
        state = self._state(session_id)
        if state.turn is not None:
            state.turn.cancel()
            try:
                await asyncio.wait_for(state.turn.done.wait(), 10)
            except TimeoutError:
                log.warning("the cancelled turn of session %s did not finish within 10 s", session_id)
        if state.mcp is not None:
            await asyncio.to_thread(state.mcp.close)
            state.mcp = None
        if state.used:
            self.app.sessions.end(state.id)
        del self.sessions[session_id]
        return CloseSessionResponse()

    # -- modes and models ------------------------------------------------------------------------

    def _set_mode(self, state: SessionState, mode: str) -> None:
        from pando_core.errors import PandoError

        if mode not in self.modes:
            hint = " (yolo needs [acp] allow_yolo = true)" if mode == "yolo" else ""
            raise invalid_params(f"unknown mode {mode!r}; pando offers {', '.join(self.modes)}{hint}")
        state.mode = mode
        try:  # stored with the session, as the model is: a session/load in another process goes on in it
            self.app.store.session_state.put(session_id=state.id, key=MODE_KEY, value=mode)
        except PandoError as exc:
            log.warning("the mode of session %s was not stored: %s", state.id, one_line(exc, 200))

    def _stored_mode(self, session_id: str) -> str:
        """The mode last set on the session (by any pando acp process), when this process offers it;
        else ``[acp] default_mode``: a stored yolo is not restored where allow_yolo is off."""
        from pando_core.errors import PandoError

        try:
            stored = self.app.store.session_state.get(session_id=session_id, key=MODE_KEY)
        except PandoError as exc:
            log.warning("the mode of session %s could not be read: %s", session_id, one_line(exc, 200))
            return self.default_mode
        if stored in self.modes:
            return stored
        if stored is not None:
            log.info("session %s was in mode %r, not offered here: it starts in %s", session_id, stored, self.default_mode)
        return self.default_mode

    def _set_model(self, state: SessionState, model: str) -> None:
        from pando_core.agent.models import resolve_model
        from pando_core.errors import PandoError

        if model not in configured_models(self.app.config, None):
            known = ", ".join(configured_models(self.app.config, None)) or "none"
            raise invalid_params(f"model {model!r} is not configured; configured: {known}")
        try:
            resolve_model(self.app.config, model)
        except PandoError as exc:
            raise invalid_params(str(exc)) from None
        state.model = model
        try:  # stored with the session: a session/load in another process goes on with this model
            self.app.store.sessions.update(id=state.id, model=model)
        except PandoError as exc:
            log.warning("the model of session %s was not stored: %s", state.id, one_line(exc, 200))

    async def set_session_mode(self, session_id: str, mode_id: str, **_: Any) -> SetSessionModeResponse:
        self._set_mode(self._state(session_id), mode_id)
        return SetSessionModeResponse()

    async def set_config_option(self, config_id: str, session_id: str, value: Any, **_: Any) -> SetSessionConfigOptionResponse:
        state = self._state(session_id)
        if config_id == "mode":
            self._set_mode(state, str(value))
        elif config_id == "model":
            self._set_model(state, str(value))
        else:
            raise invalid_params(f"unknown option {config_id!r}; pando has mode and model")
        return SetSessionConfigOptionResponse(config_options=self._config_options(state))

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "session/set_model":
            session_id, model = params.get("sessionId"), params.get("modelId")
            if not isinstance(session_id, str) or not isinstance(model, str):
                raise invalid_params("session/set_model takes sessionId and modelId (strings)")
            self._set_model(self._state(session_id), model)
            return {}
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        log.info("ignored notification %s", method)

    # -- slash commands --------------------------------------------------------------------------

    async def commands(self) -> dict[str, Command]:
        if self._commands is None:
            builtins = [
                Command("help", "list the commands pando offers here", self._cmd_help),
                Command("compact", "summarise the conversation so far to free the model's context", self._cmd_compact),
                Command("model", "show the model, or switch it: /model provider/model", self._cmd_model, hint="provider/model"),
            ]
            self._commands = await build_commands(self.app, builtins)
        return self._commands

    async def _announce_commands(self, state: SessionState) -> None:
        await asyncio.sleep(0)  # after the session/new response, which names the session
        commands = await self.commands()
        update = acp.helpers.update_available_commands([c.announced() for c in commands.values()])
        try:
            await self.client.session_update(state.id, update)
        except ConnectionError:
            pass

    async def _cmd_help(self, state: SessionState, args: str) -> str:
        commands = await self.commands()
        return "\n".join(f"/{c.name} — {c.description}" for c in commands.values())

    async def _cmd_compact(self, state: SessionState, args: str) -> str:
        from pando_core.agent.compaction import compact_session
        from pando_core.agent.models import resolve_model

        summary = await compact_session(self.app, state.id, resolve_model(self.app.config, state.model or self.app.model_ref))
        return f"Compacted: a summary of {len(summary)} characters replaces the history." if summary else "The conversation is too short to compact."

    async def _cmd_model(self, state: SessionState, args: str) -> str:
        if args:
            self._set_model(state, args)
            return f"Model: {args}"
        models = configured_models(self.app.config, self._model(state))
        return "Model: " + (self._model(state) or "none configured") + ("\nConfigured: " + ", ".join(models) if models else "")

    # -- prompts ---------------------------------------------------------------------------------

    def _read_resource(self, uri: str) -> str | None:
        if not uri.startswith("file://"):
            return None
        try:
            return Path(uri.removeprefix("file://")).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
        from pando_core.agent.attachments import DEFAULT_MAX_IMAGE_BYTES
        from pando_core.agent.models import resolve_model
        from pando_core.errors import PandoError

        state = self._state(session_id)
        if state.turn is not None:
            raise RequestError(-32600, f"session {session_id} is already answering a prompt; cancel it first")
        max_image_bytes = int(self.app.config.section("agent").get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES)
        try:
            content = prompt_content(prompt, self._read_resource, max_image_bytes=max_image_bytes)
        except ValueError as exc:
            raise invalid_params(str(exc)) from None
        text = content.text
        if not text.strip() and not content.images:
            raise invalid_params("the prompt is empty")
        command = split_command(text.strip(), await self.commands()) if not content.images else None
        if command is not None:
            return await self._run_command(state, *command)
        try:
            resolved = resolve_model(self.app.config, state.model or self.app.model_ref)
        except PandoError as exc:
            raise internal(one_line(exc, 300)) from None
        if content.images and not resolved.info.accepts_images:
            raise invalid_params(
                f"model {resolved.ref} does not accept images; pick one that does (/model) or set "
                f'[providers.{resolved.provider_name}.models."{resolved.model_id}"] images = true'
            )
        try:
            self.app.ensure_primary()
        except PandoError as exc:
            raise internal(one_line(exc, 300)) from None
        if state.mcp is not None:
            await state.mcp.ready()  # the first prompt waits for the editor's MCP servers (bounded)
        turn = Turn(self.client, self.transport.post, self.transport.drain, state, self.workdir, self.capabilities)
        state.turn, state.used = turn, True
        self._name_session(turn, text if text.strip() else "(image)")
        token = CURRENT_TURN.set(turn)
        try:
            result = await self.app.coder_agent.run(
                state.id, text, model_ref=state.model, on_event=turn.on_event, cancel_event=turn.cancel_event,
                attachments=content.images,
            )
        finally:
            CURRENT_TURN.reset(token)
            await turn.close()
            state.turn = None
        if result.status == "error" and not turn.cancelled:
            raise internal(result.error.splitlines()[0] if result.error else "the turn failed")
        reason = "cancelled" if turn.cancelled else updates.stop_reason(result.status, result.finish_reason)
        usage = Usage(input_tokens=result.tokens_in, output_tokens=result.tokens_out, total_tokens=result.tokens_in + result.tokens_out)
        return PromptResponse(stop_reason=reason, usage=usage)

    def _name_session(self, turn: Turn, text: str) -> None:
        """The first prompt names a new session, as ``pando run`` names its own."""
        session = self.app.sessions.get(turn.session.id)
        if session.get("title") != UNTITLED or session.get("message_count"):
            return
        title = " ".join(text.split())[:50]
        self.app.sessions.rename(turn.session.id, title)
        turn.send(SessionInfoUpdate(session_update="session_info_update", title=title))

    async def _run_command(self, state: SessionState, command: Command, args: str) -> PromptResponse:
        from pando_core.errors import PandoError

        try:
            text = await command.run(state, args)
        except (PandoError, RequestError) as exc:
            text = f"/{command.name}: {exc}"
        if text:
            await self.client.session_update(state.id, acp.update_agent_message_text(text))
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **_: Any) -> None:
        state = self.sessions.get(session_id)
        if state is not None and state.turn is not None:
            state.turn.cancel()

    # -- the end ---------------------------------------------------------------------------------

    async def client_gone(self, timeout: float = 10.0) -> None:
        """The client closed the connection: cancel the running turns and let them store what they have."""
        for state in self.sessions.values():
            if state.turn is not None:
                state.turn.client_gone = True
                state.turn.cancel()
        running = [s.turn.done.wait() for s in self.sessions.values() if s.turn is not None]
        if not running:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*running), timeout)
        except TimeoutError:
            log.warning("a cancelled turn did not finish within %.0f s", timeout)

    def end_sessions(self) -> None:
        for state in self.sessions.values():
            if state.used:
                self.app.sessions.end(state.id)

    def close_servers(self) -> None:
        """Stop the MCP servers the editor gave for its sessions."""
        for state in self.sessions.values():
            if state.mcp is not None:
                try:
                    state.mcp.close()
                except Exception:  # noqa: BLE001 - the others are stopped all the same
                    log.warning("stopping the MCP servers of session %s failed", state.id, exc_info=True)
                state.mcp = None
