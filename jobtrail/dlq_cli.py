"""`jobtrail dlq`: what the dead-letter topics hold, and sending letters back after a fix."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
TopicOption = Annotated[
    str | None,
    typer.Option("--topic", help="One DLQ topic (default: every one of the catalog)."),
]


def _topics(topic: str | None) -> list[str]:
    from streams.dead_letters import dlq_topics
    from streams.settings import KafkaSettings

    return [topic] if topic else dlq_topics(KafkaSettings())


@dlq_app.command("list")
def list_letters(topic: TopicOption = None) -> None:
    """How many letters each DLQ holds, by reason."""
    from streams.dead_letters import summarize
    from streams.settings import KafkaSettings

    table = Table("dlq", "letters", "truncated", "by reason")
    for name in _topics(topic):
        summary = summarize(KafkaSettings(), name)
        reasons = " ".join(f"{r}={n}" for r, n in sorted(summary.by_reason.items()))
        table.add_row(name, str(summary.total), str(summary.truncated), reasons or "-")
    Console().print(table)


@dlq_app.command()
def show(
    topic: TopicOption = None,
    reason: Annotated[str | None, typer.Option(help="Only letters with this reason.")] = None,
    max_letters: Annotated[int, typer.Option("--max", help="Stop after this many (0: all).")] = 20,
) -> None:
    """Letters as JSON lines: reason, detail, where from, key, and the value's start."""
    from streams.dead_letters import letters
    from streams.settings import KafkaSettings

    shown = 0
    for name in _topics(topic):
        for partition, offset, letter in letters(KafkaSettings(), name):
            if reason is not None and letter.reason != reason:
                continue
            value = letter.value or b""
            print(json.dumps({
                "dlq": f"{name}:{partition}:{offset}", "reason": letter.reason,
                "detail": letter.detail,
                "source": f"{letter.topic}:{letter.partition}:{letter.offset}",
                "key": (letter.key or b"").decode(errors="replace"),
                "value_bytes": len(value), "truncated_from": letter.truncated_from,
                "value_start": value[:200].decode(errors="replace"),
            }))  # fmt: skip
            shown += 1
            if max_letters and shown >= max_letters:
                return


@dlq_app.command()
def replay(
    topic: TopicOption = None,
    reason: Annotated[str | None, typer.Option(help="Only letters with this reason.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count what would be sent; send nothing.")] = False,
) -> None:
    """Send letters back to the topics they came from (bytes unchanged: event ids kept, so a
    letter replayed twice counts once); truncated letters are skipped."""
    from streams.dead_letters import replay as replay_letters
    from streams.settings import KafkaSettings

    out = Console()
    for name in _topics(topic):
        result = replay_letters(KafkaSettings(), name, reason=reason, dry_run=dry_run)
        verb = "would send" if dry_run else "sent"
        out.print(f"{name}: {verb} {result.sent} letters back {result.by_topic or ''};"
                  f" skipped {result.truncated_skipped} truncated")  # fmt: skip
