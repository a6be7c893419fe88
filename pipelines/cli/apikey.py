"""`campaignopt apikey ...`: API keys of the real-time service (admin, service, analyst)."""

from __future__ import annotations

import typer

from pipelines.cli.output import print_json, print_table

apikey_app = typer.Typer(help="API keys of the real-time service.", no_args_is_help=True)


@apikey_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key (unique among active keys)."),
    role: str = typer.Option(..., "--role", help="admin (campaign changes), service (optimize, feedback), "
                             "analyst (read)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from pipelines.apikeys import create_key
    from pipelines.db import get_engine

    key, token = create_key(get_engine(), name, role)
    if as_json:
        print_json({"key_id": key.key_id, "name": key.name, "role": key.role,
                    "created_at": key.created_at, "key": token})
        return
    typer.echo(f"API key {key.name!r} ({key.role}, id {key.key_id}) created. It is shown only now:")
    typer.echo(token)
    typer.echo("Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.", err=True)


@apikey_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the keys (never their secrets), revoked ones too."""
    from pipelines.apikeys import list_keys
    from pipelines.db import get_engine

    rows = list_keys(get_engine())
    print_json(rows) if as_json else print_table(rows, title="API keys")


@apikey_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="Name of the active key to revoke.")) -> None:
    """Revoke a key: requests with it get 401 (within the service's 2 s key cache)."""
    from pipelines.apikeys import revoke_key
    from pipelines.db import get_engine

    key = revoke_key(get_engine(), name)
    typer.echo(f"API key {key.name!r} ({key.role}, id {key.key_id}) revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")
