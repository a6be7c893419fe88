"""docker-compose.yml cannot run here (no Docker engine): check that it is well formed and
carries the same settings as the application reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "migrate", "airflow"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], f"{name}: volume {source}"
            if source.startswith("."):
                assert (REPO / source).exists(), source
    env = compose["x-campaignopt-env"]
    assert {field.upper() for field in Settings.model_fields} <= set(env)
    assert services["airflow"]["environment"] == env
    assert (REPO / "Dockerfile").exists()


def test_compose_api_service_serves_with_the_same_settings() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    api = services["api"]
    assert api["command"].startswith("campaignopt serve --host 0.0.0.0 --port 8000")
    assert api["environment"] == services["airflow"]["environment"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert api["ports"] == ["8000:8000"]
