"""Packaging: pyproject declares what the code imports, the runtime lock agrees with the full lock, and
a wheel built from the sources carries the files the packages read and works installed on its own."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import uuid
import zipfile
from pathlib import Path

import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"
PACKAGES = ("bandits", "ml", "pipelines", "api")
# requirements.in also holds the test and lint tools; they stay out of the runtime.
DEV_TOOLS = {
    "pytest", "pytest-timeout", "pytest-xdist", "ruff", "mypy", "sqlfluff", "sqlfluff-templater-dbt",
    "schemathesis", "selenium",
}
# Imported by our code, installed with the runtime part of requirements.in, declared as well.
DIRECT_EXTRAS = {"scipy", "click", "prometheus-client"}
# Read by the packages next to their code: a wheel must carry every file of these folders.
PACKAGE_DATA = ("api/templates", "api/static", "pipelines/migrations")
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def declared() -> dict[str, Requirement]:
    requirements = (Requirement(line) for line in pyproject()["project"]["dependencies"])
    return {canonicalize_name(r.name): r for r in requirements}


def lock(path: Path) -> dict[str, str]:
    pins = (line.split("==") for line in path.read_text().splitlines() if "==" in line)
    return {canonicalize_name(name): version.strip() for name, version in pins}


def test_pyproject_declares_the_runtime_part_of_requirements_in() -> None:
    wanted = {}
    for line in (REPO / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and canonicalize_name(Requirement(line).name) not in DEV_TOOLS:
            wanted[canonicalize_name(Requirement(line).name)] = Requirement(line)
    have = declared()
    assert set(have) == set(wanted) | DIRECT_EXTRAS
    for name, requirement in wanted.items():  # the same bounds and extras
        assert (have[name].specifier, have[name].extras) == (requirement.specifier, requirement.extras), name
    assert pyproject()["project"]["optional-dependencies"]["screenshots"] == ["selenium"]


def imported_top_level_modules(folder: Path) -> set[str]:
    modules = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_every_third_party_import_is_declared() -> None:
    ours = set(PACKAGES) | {path.stem for path in (REPO / "dags").glob("*.py")}
    distributions = importlib.metadata.packages_distributions()
    have = set(declared()) | {"selenium"}  # the screenshots extra (imported inside its functions only)
    undeclared = {}
    for folder in (*PACKAGES, "dags"):
        for module in imported_top_level_modules(REPO / folder) - ours - set(sys.stdlib_module_names):
            providers = {canonicalize_name(name) for name in distributions.get(module, [])}
            if not providers & have:
                undeclared[module] = sorted(providers) or "not installed"
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"


def test_runtime_lock_is_the_full_lock_without_the_dev_tools() -> None:
    runtime, full = lock(REPO / "requirements-runtime.txt"), lock(REPO / "requirements.txt")
    disagreeing = {name: (pin, full.get(name)) for name, pin in runtime.items() if full.get(name) != pin}
    assert not disagreeing, f"runtime pins not those of requirements.txt (make lock-runtime): {disagreeing}"
    assert set(declared()) <= set(runtime)
    assert not DEV_TOOLS & set(runtime)
    assert "requirements-runtime.txt" in (REPO / "Dockerfile").read_text()


def build_wheel(out: Path) -> Path:
    """Build from a copy of the sources (setuptools writes build/ and *.egg-info next to them).
    Offline: the build backend comes from uv's cache, filled when `make install` built the editable."""
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [str(UV), "build", "--wheel", "--offline", "--quiet", "-o", str(out / "dist"), str(source)],
        check=True, timeout=300,
    )
    (wheel,) = (out / "dist").glob("campaignopt-*.whl")
    return wheel


def install_apart(wheel: Path, where: Path) -> Path:
    """A fresh venv holding only the wheel (--no-deps); the dependencies come from this venv's
    site-packages through a .pth path line (as a plain path its own .pth files, the editable
    install's finder among them, are not run). Returns the fresh venv's bin folder."""
    venv = where / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "campaignopt-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")
    subprocess.run(
        [str(UV), "pip", "install", "--offline", "--quiet", "--no-deps", "--python", python, str(wheel)],
        check=True, timeout=120,
    )
    return venv / "bin"


# Run by the fresh venv's python outside the checkout: the packages, templates and static files
# must come from the installed wheel.
SERVE_FROM_THE_WHEEL = """
import sys
from pathlib import Path
import api, pipelines
for package in (api, pipelines):
    assert Path(package.__file__).is_relative_to(sys.prefix), package.__file__
from fastapi.testclient import TestClient
from api.main import create_app
client = TestClient(create_app())
login = client.get("/dashboard/login")
assert login.status_code == 200 and "<form" in login.text, login.text[:500]
css = client.get("/dashboard/static/dashboard.css")
assert css.status_code == 200 and len(css.text) > 100, css.status_code
print("ok")
"""


def test_wheel_carries_the_package_data_and_works_installed_apart(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    requires = {
        canonicalize_name(Requirement(line.split(":", 1)[1]).name): Requirement(line.split(":", 1)[1])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert {name: str(r) for name, r in requires.items()} == {name: str(r) for name, r in declared().items()}
    assert "campaignopt = pipelines.cli:main" in entry_points
    for folder in PACKAGE_DATA:
        files = {
            path.relative_to(REPO).as_posix()
            for path in (REPO / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert files and files <= names, f"{folder}: the wheel lacks {sorted(files - names)}"

    bin_dir = install_apart(wheel, tmp_path)
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = f"campaignopt_wheel_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{database}"'))
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env |= {"DATABASE_URL": url, "CAMPAIGNOPT_HOME": str(tmp_path / "home")}
        upgraded = subprocess.run(
            [str(bin_dir / "campaignopt"), "db", "upgrade"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert upgraded.returncode == 0, upgraded.stderr[-3000:]
        with sa.create_engine(url).connect() as conn:  # the migrations the wheel carries ran
            revision = conn.execute(sa.text("select version_num from ops.alembic_version")).scalar_one()
            assert conn.execute(sa.text("select to_regclass('ops.decisions')")).scalar_one() is not None
        newest = sorted((REPO / "pipelines" / "migrations" / "versions").glob("[0-9]*.py"))[-1]
        assert revision in newest.read_text()
        served = subprocess.run(
            [str(bin_dir / "python"), "-c", SERVE_FROM_THE_WHEEL],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert served.returncode == 0 and served.stdout.strip().endswith("ok"), served.stderr[-3000:]
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))
        admin.dispose()
