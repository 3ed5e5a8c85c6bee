"""``pando status`` and ``pando instances``: the multi-instance picture of this working directory."""

import json
import os
import time

import typer

from ..context import current
from ..runtime.roles import SECONDARY


def status_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Report this directory's primary (pid, epoch, endpoints, heartbeat, services) without joining
    the election: never becomes the primary, never creates .pando/. Exit 1 when the primary is hung."""
    from ..db import database_settings
    from ..runtime.observer import observe

    context = current()
    runtime_cfg = context.config.section("runtime")
    database = database_settings(context.config.section("database"))
    observer = observe(context.workdir, config=runtime_cfg, database=database)
    try:
        found = observer.found
        record = found.record
        heartbeat_age = services = None
        if observer.joined:
            heartbeat_age = _heartbeat_age(observer.client, float(runtime_cfg.get("heartbeat_interval") or 1.0))
            services = _services(observer.client)
        data = {
            "role": SECONDARY if observer.joined else None,  # this command's own role: it only looks
            "running": found.state == "running",
            "primary_state": found.state,  # running | not_answering | none
            "epoch": record.epoch if record is not None else None,
            "instance_id": observer.instance_id if observer.joined else None,
            "pid": os.getpid(),
            "primary_pid": record.pid if record is not None and found.state != "none" else None,
            "primary_instance_id": record.instance_id if record is not None and found.state != "none" else None,
            "endpoints": record.endpoints if record is not None and found.state != "none" else {},
            "failover": bool(runtime_cfg.get("failover", True)),
            "last_heartbeat_age_s": heartbeat_age,
            "workdir": str(context.workdir),
            "database": database.describe(),  # team mode: PostgreSQL, shared by every instance
            "instances": len(observer.instances.live()),
            "services": services or [],
            "problem": found.describe() if found.state == "not_answering" else None,
        }
        if database.team:  # where the role-scoped services run for the whole team
            data["service_owner"] = _service_owner(database)
        if found.state == "none" and data["instances"]:
            data["error"] = _why_nobody_is_primary(context, data["instances"])
    finally:
        observer.cleanup()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print_status(data)
    if found.state == "not_answering" or data.get("error"):
        raise typer.Exit(1)


def _print_status(data: dict) -> None:
    if data["primary_state"] == "none":
        from ..runtime.observer import NO_PRIMARY

        typer.echo(f"{NO_PRIMARY} ({data['workdir']})")
        typer.echo(f"instances:   {data['instances']} running")
        if data.get("error"):
            typer.echo(f"why:         {data['error']}")
        return
    endpoints = data["endpoints"]
    state = "" if data["running"] else " — NOT ANSWERING"
    typer.echo(f"primary:     pid {data['primary_pid']}, epoch {data['epoch']}{state}")
    if data["problem"]:
        typer.echo(f"problem:     {data['problem']}")
    typer.echo(f"transport:   {endpoints.get('transport', '?')}  pub {endpoints.get('pub')}  rpc {endpoints.get('rpc')}")
    typer.echo(f"failover:    {'on' if data['failover'] else 'off'}")
    typer.echo(f"instances:   {data['instances']} running in {data['workdir']}")
    if data["last_heartbeat_age_s"] is not None:
        typer.echo(f"heartbeat:   {data['last_heartbeat_age_s']:.1f}s ago")
    if data.get("service_owner"):
        typer.echo(f"team lease:  services run on {data['service_owner']}")
    for service in data["services"]:
        detail = service.get("problem") or ", ".join(f"{k} {v}" for k, v in (service.get("health") or {}).items())
        typer.echo(f"service:     {service['name']} ({service['plugin']}) {service['state']}{'  ' + detail if detail else ''}")


def _service_owner(database) -> str:  # noqa: ANN001 - DatabaseSettings
    """Team mode: who holds the team lease (the services run there), from the database."""
    from ..runtime.team import SERVICE_GROUP, database_name, describe_owner
    from ..runtime.team_lease import lease_key

    try:
        return describe_owner(database.url, lease_key(database_name(database.url), SERVICE_GROUP), database.password)
    except Exception as exc:  # noqa: BLE001 - status reports what it can
        return f"unknown ({exc})"


def _heartbeat_age(client, interval: float) -> float | None:  # noqa: ANN001 - a runtime Client
    """Seconds since the primary's last heartbeat, waiting up to one interval for the first one."""
    deadline = time.monotonic() + interval + 0.5
    while client.last_heartbeat_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if client.last_heartbeat_at is None:
        return None
    return round(time.monotonic() - client.last_heartbeat_at, 3)


def _services(client) -> list:  # noqa: ANN001 - a runtime Client
    """The primary's background services and their health."""
    from ..runtime.protocol import KIND_METHOD_NOT_FOUND, RpcError

    try:
        return list(client.call("core.services", {}, timeout=2.0))
    except RpcError as exc:
        if exc.kind == KIND_METHOD_NOT_FOUND:
            return []  # a primary without an App (a bare runtime) runs no services
        return [{"name": "?", "plugin": "?", "state": "unknown", "health": None, "problem": str(exc)}]
    except Exception as exc:  # noqa: BLE001 - status reports what it can
        return [{"name": "?", "plugin": "?", "state": "unknown", "health": None, "problem": str(exc)}]


def _why_nobody_is_primary(context, count: int) -> str:  # noqa: ANN001 - the PandoContext
    """pando processes run here but none is primary (their promotions fail): the likely reason."""
    from ..db.storage import _device_full, no_space_message

    if _device_full(context.pando_dir):
        return f"nobody is primary although {count} pando process(es) run here: {no_space_message(context.pando_dir)}"
    return f"nobody is primary although {count} pando process(es) run here; they retry taking over (see their logs)"


def instances_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the pando processes running in this working directory (without joining them)."""
    from ..runtime.instances import InstanceRegistry
    from ..runtime.lock import read_primary_record

    context = current()
    live = InstanceRegistry(context.pando_dir).live()
    record = read_primary_record(context.pando_dir)
    for row in live:
        row["is_primary"] = bool(record and row["instance_id"] == record.instance_id)
    if as_json:
        typer.echo(json.dumps(live, indent=2))
        return
    if not live:
        typer.echo("no pando instance is running here")
        return
    for row in live:
        age = (time.time() * 1000 - row["since"]) / 1000
        typer.echo(f"{row['instance_id']}  pid {row['pid']:<7} {row['role']:<9} epoch {row['epoch']:<3} up {age:.0f}s")


def register(cli: typer.Typer) -> None:
    cli.command("status")(status_command)
    cli.command("instances")(instances_command)
