"""`campaignopt serve`: the real-time service (FastAPI on uvicorn).

uvicorn imports the app by name (``api.main:create_app``), so pipelines/ still imports nothing of api/.
"""

from __future__ import annotations

import os
import shutil

import typer

APP = "api.main:create_app"


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="uvicorn worker processes."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the API: /campaigns, /healthz, /readyz, /metrics; OpenAPI at /docs."""
    import uvicorn

    from pipelines.settings import get_settings

    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Several processes: prometheus_client writes each one's samples to files in this
        # folder and /metrics sums them. It must be empty at start (stale files from a dead run).
        folder = get_settings().home / "prometheus-multiproc"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
