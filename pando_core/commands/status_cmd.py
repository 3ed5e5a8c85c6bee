"""``pando status`` and ``pando instances``: the multi-instance picture of this working directory."""

import json
import os
import time

import typer

from ..context import current


def status_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Join this directory's instances and report: role, epoch, primary, endpoints, failover."""
    from ..app import App, AppOptions

    context = current()
    with App.running(context, AppOptions(startup_mode="status")) as app:
        runtime = app.runtime
        client = runtime.client
        heartbeat_age = None
        if client is not None and client.last_heartbeat_at is not None:
            heartbeat_age = round(time.monotonic() - client.last_heartbeat_at, 3)
        endpoints = runtime.endpoints.to_dict() if runtime.endpoints else {}
        data = {
            "role": runtime.role,
            "epoch": runtime.epoch,
            "instance_id": runtime.instance_id,
            "pid": os.getpid(),
            "primary_pid": runtime.primary_pid,
            "endpoints": endpoints,
            "failover": runtime.failover,
            "last_heartbeat_age_s": heartbeat_age,
            "workdir": str(context.workdir),
            "instances": len(runtime.instances.live()),
            "services": _services(app),
        }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"role:        {data['role']} (this instance {data['instance_id']}, pid {data['pid']})")
    typer.echo(f"primary:     pid {data['primary_pid']}, epoch {data['epoch']}")
    typer.echo(f"transport:   {endpoints.get('transport', '?')}  pub {endpoints.get('pub')}  rpc {endpoints.get('rpc')}")
    typer.echo(f"failover:    {'on' if data['failover'] else 'off'}")
    typer.echo(f"instances:   {data['instances']} running in {data['workdir']}")
    if heartbeat_age is not None:
        typer.echo(f"heartbeat:   {heartbeat_age:.1f}s ago")
    for service in data["services"]:
        detail = service.get("problem") or ", ".join(f"{k} {v}" for k, v in (service.get("health") or {}).items())
        typer.echo(f"service:     {service['name']} ({service['plugin']}) {service['state']}{'  ' + detail if detail else ''}")


def _services(app) -> list:  # noqa: ANN001
    """The primary's background services and their health (asked of the primary when not here)."""
    try:
        return list(app.call_primary("core.services", timeout=2.0))
    except Exception as exc:  # noqa: BLE001 - status reports what it can
        return [{"name": "?", "plugin": "?", "state": "unknown", "health": None, "problem": str(exc)}]


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
