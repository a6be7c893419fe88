"""docker-compose.yml cannot run here (no Docker engine): check that it is valid against the Compose
Specification's JSON schema, carries the same settings as the application reads, and that every
command of the image's services names an executable the image installs with subcommands and options
that exist.

tests/compose-spec.json is the Compose Specification's schema, unchanged:
https://github.com/compose-spec/compose-spec/blob/b2835e8acc1e42e7aecbc27a9bc4a1fc66ef21ba/schema/compose-spec.json
(Apache License 2.0: https://github.com/compose-spec/compose-spec/blob/master/LICENSE). JSON has no
comments, so the notice lives here and in README.md ("Running with Docker Compose").
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app as campaignopt_app
from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: a stand-in for the image's
AIRFLOW_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
# Executables of the external images (postgres:16, redis:7), not of ours.
EXTERNAL_IMAGE_COMMANDS = {"postgres": {"pg_isready"}, "redis": {"redis-cli"}}
SHELL_OPERATORS = {"&&", "||", ";", "|"}


def load_compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def interpolate(text: str) -> str:
    """What Compose makes of ``$$`` (a literal ``$``) and ``${VAR:-default}`` (VAR unset)."""
    variable = r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}"
    return re.sub(variable, lambda m: "$" if m.group(0) == "$$" else (m.group(1) or ""), text)


def command_lines(command: str | list[str]) -> list[list[str]]:
    """The simple commands one Compose ``command`` or healthcheck ``test`` runs, as argv lists:
    ``CMD`` lists as they are, ``CMD-SHELL``, strings and ``sh -c`` split at the shell's operators."""
    if isinstance(command, list):
        return _simple_commands([interpolate(word) for word in command])
    return _simple_commands(interpolate(command))


def _simple_commands(command: str | list[str]) -> list[list[str]]:
    if isinstance(command, str):
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lines, line = [], []
        for word in [*lexer, ";"]:
            if word in SHELL_OPERATORS:
                lines += [line] if line else []
                line = []
            else:
                line.append(word)
        return [argv for line in lines for argv in _simple_commands(line)]
    if command[0] == "CMD-SHELL":
        return _simple_commands(" ".join(command[1:]))
    argv = command[1:] if command[0] == "CMD" else command
    if argv[:2] == ["sh", "-c"]:
        return _simple_commands(argv[2])
    return [argv]


def service_commands(compose: dict) -> dict[str, list[list[str]]]:
    """Per service: its command's and its healthcheck's simple commands."""
    out = {}
    for name, service in compose["services"].items():
        lines = command_lines(service["command"]) if "command" in service else []
        if "healthcheck" in service:
            lines += command_lines(service["healthcheck"]["test"])
        out[name] = lines
    return out


def console_script_distributions() -> dict[str, str]:
    return {
        entry.name: dist.metadata["Name"].lower()
        for dist in importlib.metadata.distributions()
        for entry in dist.entry_points
        if entry.group == "console_scripts"
    }


def runtime_lock_names() -> set[str]:
    lines = (REPO / "requirements-runtime.txt").read_text().splitlines()
    return {line.split("==")[0].lower() for line in lines if "==" in line and not line.startswith("#")}


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)  # the draft the schema declares
    assert validator_class is jsonschema.Draft201909Validator
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(load_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_file_is_consistent() -> None:
    compose = load_compose()
    services = compose["services"]
    others = {"postgres", "redis", "mlflow", "migrate", "api", "stream-consumer", "airflow-worker"}
    assert others | set(AIRFLOW_COMPONENTS) <= set(services)
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
    airflow_env = compose["x-airflow-env"]
    assert env.items() <= airflow_env.items(), "the Airflow components run campaignopt code: same settings"
    for name in (*AIRFLOW_COMPONENTS, "airflow-worker", "migrate"):
        assert services[name]["environment"] == airflow_env, name
    assert (REPO / "Dockerfile").exists()


def test_compose_airflow_runs_as_separate_components_on_celery() -> None:
    compose = load_compose()
    services, env = compose["services"], compose["x-airflow-env"]
    assert "airflow" not in services, "airflow standalone is a development mode"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:5432/airflow")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "one secret shared by every component"
    assert "CREATE DATABASE airflow" in (REPO / "docker" / "init-databases.sql").read_text()
    commands = {name: interpolate(str(service.get("command"))) for name, service in services.items()}
    assert commands["airflow-apiserver"].startswith("airflow api-server")
    assert commands["airflow-scheduler"] == "airflow scheduler"
    assert commands["airflow-dag-processor"] == "airflow dag-processor"
    assert commands["airflow-triggerer"] == "airflow triggerer"
    assert commands["airflow-worker"] == "airflow celery worker"
    assert "airflow db migrate" in commands["migrate"]
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "workers scale: --scale airflow-worker=N"
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}, name
        assert "healthcheck" in service, name
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"


def test_compose_api_service_serves_with_the_same_settings() -> None:
    compose = load_compose()
    api = compose["services"]["api"]
    assert api["command"].startswith("campaignopt serve --host 0.0.0.0 --port 8000")
    assert api["environment"] == compose["x-campaignopt-env"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert api["ports"] == ["8000:8000"]


def test_compose_commands_are_executables_the_image_installs() -> None:
    compose = load_compose()
    scripts, locked = console_script_distributions(), runtime_lock_names()
    assert "requirements-runtime.txt" in (REPO / "Dockerfile").read_text()
    for name, lines in service_commands(compose).items():
        assert lines or "image" in compose["services"][name], f"{name} runs no command"
        for argv in lines:
            executable = argv[0]
            if "build" not in compose["services"][name]:
                assert executable in EXTERNAL_IMAGE_COMMANDS[name], f"{name}: {executable}"
                continue
            assert (BIN / executable).is_file(), f"{name}: {executable} is not installed"
            if executable == "python":
                assert argv[1] == "-c", argv
                compile(argv[2], f"{name} healthcheck", "exec")
            elif executable != "campaignopt":  # ours: pyproject's [project.scripts]
                assert scripts[executable] in locked, f"{name}: {executable} is not in the runtime lock"
            for pattern in (word for word in argv if "*" in word and "/" in word):
                assert glob.glob(str(REPO / pattern)), f"{name}: {pattern} matches no file of the image"


def image_commands(executable: str) -> list[list[str]]:
    lines = [argv for lines in service_commands(load_compose()).values() for argv in lines]
    unique = {tuple(argv[1:]) for argv in lines if argv[0] == executable}
    assert unique, f"no {executable} command in docker-compose.yml"
    return [list(args) for args in sorted(unique)]


def test_compose_campaignopt_subcommands_and_options_exist() -> None:
    runner = CliRunner()
    for args in image_commands("campaignopt"):
        # click parses every option before --help acts: an unknown one fails with exit code 2.
        result = runner.invoke(campaignopt_app, [*args, "--help"])
        assert result.exit_code == 0, f"campaignopt {shlex.join(args)}: {result.output}"


# Parses each argv with Airflow's own CLI parser (what `airflow ...` runs), in one process: a wrong
# subcommand, option or choice is argparse's error (exit 2). Celery's app path must import.
AIRFLOW_PARSE = """
import importlib.util, json, sys
from airflow.cli.cli_parser import get_parser
failed = []
for argv in json.loads(sys.argv[1]):
    try:
        get_parser().parse_args(argv)
    except SystemExit as exc:
        failed.append([argv, exc.code])
for module in json.loads(sys.argv[2]):
    if importlib.util.find_spec(module) is None:
        failed.append([module, "no such module"])
print(json.dumps(failed))
"""


def test_compose_airflow_celery_and_mlflow_commands_exist(tmp_path: Path) -> None:
    # The celery commands exist for the CeleryExecutor only, as in the image's settings.
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": str(BIN), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    celery_apps = [args[args.index("--app") + 1] for args in image_commands("celery")]
    modules = [app.rsplit(".", 1)[0] for app in celery_apps]
    argvs = image_commands("airflow")
    parsed = subprocess.run(
        [sys.executable, "-c", AIRFLOW_PARSE, json.dumps(argvs), json.dumps(modules)],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert json.loads(parsed.stdout.splitlines()[-1]) == [], parsed.stderr[-3000:]
    assert len(argvs) >= 7  # api-server, scheduler, dag-processor, triggerer, celery worker, jobs check, db
    for args in image_commands("mlflow"):
        shown = subprocess.run(
            [str(BIN / "mlflow"), *args, "--help"], capture_output=True, text=True, timeout=120, env=env
        )
        assert shown.returncode == 0, f"mlflow {shlex.join(args)}: {shown.stderr[-2000:]}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('sh -c "a x && b ${V:-1} || c"', [["a", "x"], ["b", "1"], ["c"]]),
        (["CMD-SHELL", 'airflow jobs check --hostname "$${HOSTNAME}"'], [["airflow", "jobs", "check",
                                                                         "--hostname", "${HOSTNAME}"]]),
        (["CMD", "python", "-c", "print(1)"], [["python", "-c", "print(1)"]]),
    ],
)
def test_command_lines_splits_like_compose_and_the_shell(command, expected) -> None:
    assert command_lines(command) == expected
