"""Retrain the response model from the training_examples mart, register it, gate it, promote it.

Six steps, each one function, so the retraining DAG can run them as separate tasks (on
different workers: they hand over through one MLflow run, the run id in XCom) and the CLI
(``campaignopt model retrain``) or a test can run them all with :func:`retrain`:

- :mod:`.config` — :class:`RetrainConfig`, the tracking URI and registry target;
- :mod:`.data` — the training examples and arms from PostgreSQL, the enough-data check;
- :mod:`.steps` — build the training set, train, evaluate, register;
- :mod:`.gate` — gate (quality floor + paired comparison with the champion), promote,
  :func:`retrain`, and :func:`load_champion_model` for scorers.
"""

from pipelines.retrain.config import (
    MLFLOW_DATABASE,
    RetrainConfig,
    artifact_root,
    ensure_tracking_backend,
    mlflow_ui_command,
    model_name,
    registry_target,
    tracking_uri,
)
from pipelines.retrain.data import TRAINING_EXAMPLES_TABLE, enough_data, load_arms, load_training_examples
from pipelines.retrain.gate import gate_step, load_champion_model, promote_step, retrain
from pipelines.retrain.steps import (
    READY,
    SKIPPED,
    build_training_set,
    evaluate_step,
    register_step,
    train_step,
)

__all__ = [
    "MLFLOW_DATABASE",
    "READY",
    "SKIPPED",
    "TRAINING_EXAMPLES_TABLE",
    "RetrainConfig",
    "artifact_root",
    "build_training_set",
    "enough_data",
    "ensure_tracking_backend",
    "evaluate_step",
    "gate_step",
    "load_arms",
    "load_champion_model",
    "load_training_examples",
    "mlflow_ui_command",
    "model_name",
    "promote_step",
    "register_step",
    "registry_target",
    "retrain",
    "tracking_uri",
    "train_step",
]
