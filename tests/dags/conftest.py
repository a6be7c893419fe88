"""Airflow reads its configuration at import: point it at a private home first."""

import os
import tempfile
from pathlib import Path

_home = Path(tempfile.mkdtemp(prefix="airflow_home_"))
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[2] / "dags"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home / 'airflow.db'}")

# Airflow puts the DAG folder on sys.path when it starts; DagBag in a test process does not.
import sys  # noqa: E402

sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
