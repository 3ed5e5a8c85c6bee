"""``pando evaluator``: stats, evaluate ID, rules [list|disable|enable], templates [list|add]."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
from pathlib import Path

import typer

HELP = """Self-improvement: sessions are scored when they end (user corrections, token efficiency),
prompt-section variants are chosen by UCB1, and short rules learned by a judge model join the
system prompt of later sessions."""

app = typer.Typer(help=HELP, no_args_is_help=True)
rules_app = typer.Typer(help="Learned rules: list (the default), disable ID, enable ID.", invoke_without_command=True)
templates_app = typer.Typer(
    help="Prompt-section variants chosen by UCB1: list (the default), add SECTION FILE.", invoke_without_command=True
)
app.add_typer(rules_app, name="rules")
app.add_typer(templates_app, name="templates")


def _open_app():
    from pando_core.app import App, AppOptions
    from pando_core.context import current

    return App.running(current(), AppOptions(startup_mode="evaluator"))


def _echo_json(value) -> None:  # noqa: ANN001
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _when(ms) -> str:  # noqa: ANN001
    from pando_core.commands.display import local_time

    return local_time(ms)


def _reward(value) -> str:  # noqa: ANN001
    return "-" if value is None else f"{value:.3f}"


@app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="print the statistics as JSON")) -> None:
    """Sessions scored, average reward, last evaluation, UCB ranking per section, active rules."""
    from .report import collect_stats

    with _open_app() as pando:
        data = collect_stats(pando)
    if as_json:
        _echo_json(data)
        return
    last = data["last_evaluation"]
    typer.echo(f"Sessions scored:  {data['sessions_scored']} ({data['pending']} waiting)")
    typer.echo(f"Average reward:   {_reward(data['average_reward'])}")
    if last:
        typer.echo(f"Last evaluation:  {_when(last['evaluated_at'])}  session {last['session_id']}  reward {_reward(last['reward'])}")
    else:
        typer.echo("Last evaluation:  none yet")
    state = "on" if data["ucb_active"] else f"off until {data['min_sessions']} sessions are scored"
    typer.echo(f"Variant choice:   {state}")
    for section in data["sections"]:
        typer.echo(f"\nSection {section['section']}:")
        for arm in section["ranking"]:
            ucb = "untried" if arm["ucb"] is None else f"ucb {arm['ucb']:.3f}"
            typer.echo(f"  {arm['template_id']:<28} used {arm['times_used']:>4}  avg {arm['avg_reward']:.3f}  {ucb}")
    typer.echo(f"\nActive rules: {len(data['rules'])}")
    for rule in data["rules"]:
        typer.echo(f"  {rule['id'][:12]}  [{rule['task_type']}]  {rule['content']}")


@app.command("evaluate")
def evaluate(
    session_id: str = typer.Argument(..., help="session id or unique prefix (see `pando sessions list`)"),
    no_judge: bool = typer.Option(False, "--no-judge", help="score only; do not ask the judge model for a rule"),
    as_json: bool = typer.Option(False, "--json", help="print the outcome as JSON"),
) -> None:
    """Score one session now, on the primary (from any pando instance, or with none running)."""
    from .methods import request_evaluation

    with _open_app() as pando:
        result = request_evaluation(pando, session_id, judge=False if no_judge else None)
    if as_json:
        _echo_json(result)
        return
    score = result["score"]
    if score is None:
        typer.echo(f"Session {session_id} has no messages: nothing to score.")
        return
    verb = "scored" if result["stored"] else "already scored"
    typer.echo(
        f"Session {score['session_id']} {verb}: reward {score['reward']:.3f} "
        f"(success {score['success_score']:.2f}, efficiency {score['efficiency_score']:.2f}, "
        f"{score['corrections']} corrections, {score['tokens']} tokens)"
    )
    if result.get("rule"):
        typer.echo(f"Learned rule {result['rule']['id'][:12]}: {result['rule']['content']}")
    if result.get("retired"):
        typer.echo(f"Retired the weakest rule {result['retired'][:12]} (max_rules reached)")
    if result.get("judge_error"):
        typer.echo(f"No rule: {result['judge_error']}")


def _print_rules(rules: list, as_json: bool) -> None:
    if as_json:
        _echo_json(rules)
        return
    if not rules:
        typer.echo("No learned rules yet.")
        return
    for rule in rules:
        state = "active" if rule["is_active"] else "disabled"
        rate = "-" if rule["success_rate"] is None else f"{rule['success_rate']:.2f}"
        typer.echo(
            f"{rule['id'][:12]}  {state:<8}  [{rule['task_type']}]  used {rule['usage_count']}  "
            f"success {rate}  {rule['content']}"
        )


@rules_app.callback()
def rules(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print the rules as JSON")) -> None:
    """Learned rules (all of them, active first)."""
    if ctx.invoked_subcommand is None:
        rules_list(as_json)


@rules_app.command("list")
def rules_list(as_json: bool = typer.Option(False, "--json", help="print the rules as JSON")) -> None:
    """Every learned rule, active first."""
    with _open_app() as pando:
        _print_rules(pando.store.evaluator.rules(include_inactive=True), as_json)


def _set_rule(rule_id: str, active: bool) -> None:
    with _open_app() as pando:
        rule = pando.store.evaluator.set_rule_active(rule_id=rule_id, active=active)
    typer.echo(f"Rule {rule['id'][:12]} {'enabled' if active else 'disabled'}: {rule['content']}")


@rules_app.command("disable")
def rules_disable(rule_id: str = typer.Argument(..., help="rule id or unique prefix")) -> None:
    """Stop listing a rule in the system prompt."""
    _set_rule(rule_id, False)


@rules_app.command("enable")
def rules_enable(rule_id: str = typer.Argument(..., help="rule id or unique prefix")) -> None:
    """List a disabled rule in the system prompt again (it counts toward max_rules)."""
    _set_rule(rule_id, True)


@templates_app.callback()
def templates(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print the variants as JSON")) -> None:
    """Prompt-section variants and their UCB1 ranking."""
    if ctx.invoked_subcommand is None:
        templates_list(as_json)


@templates_app.command("list")
def templates_list(as_json: bool = typer.Option(False, "--json", help="print the variants as JSON")) -> None:
    """Every variant, by section."""
    with _open_app() as pando:
        rows = pando.store.evaluator.templates()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("No prompt variants. Add one with `pando evaluator templates add SECTION FILE`.")
        return
    for row in rows:
        state = "active" if row["is_active"] else "inactive"
        first_line = row["content"].splitlines()[0] if row["content"] else ""
        typer.echo(f"{row['section']:<16} v{row['version']:<3} {row['id'][:12]}  {state:<8}  {first_line[:60]}")


@templates_app.command("add")
def templates_add(
    section: str = typer.Argument(..., help="the system-prompt section it replaces (identity, tools, skills, ...)"),
    file: Path = typer.Argument(..., help="a text file with the variant's full text"),
) -> None:
    """Add a variant of a section; the section's own text stays an arm of its own ("default")."""
    from pando_core.errors import UsageError

    try:
        content = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    with _open_app() as pando:
        row = pando.store.evaluator.add_template(section=section, content=content)
    typer.echo(f"Added variant {row['id']} (version {row['version']}) of section {row['section']}")
