"""pando-evaluator's page in ``pando serve`` (``pando_web_routes``): the reward of each scored
session over time as an inline SVG chart (no script, no library), the UCB ranking of each prompt
section's variants, and the learned rules. Re-rendered live when ``evaluator_scores`` changes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

WIDTH, HEIGHT, PAD = 720, 220, 32


def chart_svg(scores: list[dict[str, Any]], escape: Any, when: Any) -> str:
    """Reward (0..1) against time, one dot per session (its title as the tooltip), joined by a line."""
    if not scores:
        return '<p class="empty">No session has been scored yet.</p>'
    first, last = scores[0]["evaluated_at"], scores[-1]["evaluated_at"]
    span = max(last - first, 1)

    def x(stamp: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((stamp - first) / span if len(scores) > 1 else 0.5)

    def y(reward: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * max(0.0, min(1.0, float(reward)))

    points = " ".join(f"{x(s['evaluated_at']):.1f},{y(s['reward']):.1f}" for s in scores)
    dots = "".join(
        f'<a href="/sessions/{quote(s["session_id"])}"><circle class="score" cx="{x(s["evaluated_at"]):.1f}" '
        f'cy="{y(s["reward"]):.1f}" r="4" fill="#2b6cb0"><title>{escape(s.get("title") or s["session_id"])}: '
        f'{float(s["reward"]):.3f}</title></circle></a>'
        for s in scores
    )
    grid = "".join(
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e7eb"/>'
        f'<text x="4" y="{y(v) + 4:.1f}" font-size="11" fill="#6a737d">{v:.1f}</text>'
        for v in (0.0, 0.5, 1.0)
    )
    labels = (
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11" fill="#6a737d">{escape(when(first))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" fill="#6a737d" text-anchor="end">{escape(when(last))}</text>'
    )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="reward per session over time">{grid}{labels}'
        f'<polyline points="{points}" fill="none" stroke="#9cb8d9" stroke-width="1.5"/>{dots}</svg>'
    )


def web_routes(app: Any) -> Any:
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from pando_core.web import WebRoutes
    from pando_core.web.kit import escape, page, when

    from .report import collect_stats

    def content() -> str:
        stats = collect_stats(app)
        scores = app.store.evaluator.score_history(limit=500)
        average = stats.get("average_reward")
        shown_average = f" · average reward {average:.3f}" if average is not None else ""
        ucb = "active" if stats["ucb_active"] else f"active after {stats['min_sessions']} sessions"
        summary = (
            f'<p>Sessions scored: <strong id="scored">{stats["sessions_scored"]}</strong> '
            f'({stats["pending"]} waiting){shown_average} · UCB {ucb}</p>'
        )
        sections = ""
        for section in stats["sections"]:
            rows = "".join(
                f"<tr><td>{rank}</td><td><code>{escape(arm['template_id'])}</code></td><td class=\"num\">{arm['times_used']}</td>"
                f"<td class=\"num\">{arm['avg_reward']:.3f}</td><td class=\"num\">{_ucb(arm['ucb'])}</td></tr>"
                for rank, arm in enumerate(section["ranking"], 1)
            )
            sections += (
                f"<h3>{escape(section['section'])}</h3><table><thead><tr><th>#</th><th>Variant</th><th>Uses</th>"
                f"<th>Average reward</th><th>UCB</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        rules = "".join(
            f"<tr><td>{escape(r['content'])}</td><td>{escape(r['task_type'])}</td><td class=\"num\">{r['confidence']:.2f}</td>"
            f"<td class=\"num\">{r['usage_count']}</td></tr>"
            for r in stats["rules"]
        ) or '<tr><td colspan="4" class="empty">No rule learned yet.</td></tr>'
        return (
            f"{summary}<h2>Reward per session</h2>{chart_svg(scores, escape, when)}"
            f"<h2>Prompt variants (UCB ranking)</h2>{sections or '<p class=empty>No section has variants.</p>'}"
            "<h2>Learned rules</h2><table><thead><tr><th>Rule</th><th>Task type</th><th>Confidence</th><th>Uses</th></tr></thead>"
            f"<tbody>{rules}</tbody></table>"
        )

    def scores_page(request: Any) -> Any:
        return page(request, "Scores", f'<div id="scores" data-live="evaluator_scores,evaluator_pending" data-src="/evaluator/content">{content()}</div>')

    def scores_fragment(request: Any) -> Any:
        return HTMLResponse(content())

    def scores_json(request: Any) -> Any:
        """Scores over time (oldest first) and the evaluator's stats (UCB rankings, rules)."""
        return JSONResponse({"scores": app.store.evaluator.score_history(limit=500), "stats": collect_stats(app)})

    return WebRoutes(
        routes=[
            Route("/evaluator", scores_page),
            Route("/evaluator/content", scores_fragment),
            Route("/api/evaluator/scores", scores_json),
        ],
        nav={"Scores": "/evaluator"},
    )


def _ucb(value: float | None) -> str:
    return "untried" if value is None else f"{value:.3f}"
