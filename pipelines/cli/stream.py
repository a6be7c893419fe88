"""`campaignopt stream consume`: land interaction events from a Redis stream (pipelines/stream/)."""

from __future__ import annotations

import typer

from pipelines.cli.output import print_json, print_table

stream_app = typer.Typer(help="Interaction events from a message stream (Redis Streams).",
                         no_args_is_help=True)


@stream_app.command("consume")
def consume(
    stream: str = typer.Option(..., "--stream", help="The Redis stream holding one event per message."),
    group: str = typer.Option(..., "--group", help="Consumer group (created at the stream's start if new)."),
    consumer: str = typer.Option(..., "--consumer", help="This consumer's name, stable across restarts."),
    batch: int = typer.Option(100, "--batch", min=1, max=10_000, help="Messages per transaction."),
    max_messages: int | None = typer.Option(
        None, "--max-messages", min=1, help="Stop after this many messages (default: no limit)."
    ),
    idle_exit: float | None = typer.Option(
        None, "--idle-exit", min=0.0, help="Stop after this many seconds without a message (default: never)."
    ),
    claim_idle: float | None = typer.Option(
        None, "--claim-idle", min=0.001,
        help="Take over messages another consumer left unacknowledged this long "
        "(default STREAM_CLAIM_IDLE_SECONDS).",
    ),  # fmt: skip
    db_wait: float | None = typer.Option(
        None, "--db-wait", min=0.0,
        help="Retry a batch this long while the database is down, then stop with exit 3 "
        "(default STREAM_DB_WAIT_SECONDS).",
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Land events (JSON in each message's 'event' field) exactly once by event_id, as POST /feedback
    does; acknowledge after the commit; bad messages go to '<stream>:dead' with the reason."""
    from pipelines.db import get_engine
    from pipelines.settings import get_settings
    from pipelines.stream import RedisEventStream, dead_letter_stream_name, redis_client
    from pipelines.stream.consumer import consume as run

    settings = get_settings()
    events = RedisEventStream(redis_client(settings.redis_url), stream, group, consumer)
    report = run(
        events,
        get_engine(settings),
        batch=batch,
        max_messages=max_messages,
        idle_exit_seconds=idle_exit,
        claim_idle_seconds=claim_idle if claim_idle is not None else settings.stream_claim_idle_seconds,
        db_wait_seconds=db_wait if db_wait is not None else settings.stream_db_wait_seconds,
    )
    summary = {"stream": stream, "group": group, "consumer": consumer, **report.as_dict()}
    if as_json:
        print_json(summary)
        return
    print_table([summary], title="Stream consumed")
    if report.dead_letters:
        typer.echo(
            f"{report.dead_letters} message(s) dead-lettered to {dead_letter_stream_name(stream)} "
            "(XRANGE it to read the reasons)",
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app, name="stream")
