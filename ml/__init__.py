"""The response model: features, training, evaluation, MLflow registry and promotion.

Public entry points: :mod:`ml.features` (``FeatureSpec``), :mod:`ml.train`
(``train_model``), :mod:`ml.evaluate` (``evaluate``), :mod:`ml.scoring`
(``score_matrix``, ``ResponseModel``), :mod:`ml.gate` (the promotion rule, with DeLong and
paired intervals), :mod:`ml.tracking` (the retraining run: hand-over artifacts, logging,
registering, the gate's record) and :mod:`ml.registry` (``promote``, ``rollback``,
``list_versions``, ``load_champion``). Functions take DataFrames; reading the database is the
job of ``pipelines.retrain``.
"""

import os

# OpenMP threads (XGBoost, scikit-learn) spin while they wait by default. On a small shared
# machine (2 cores, other jobs running) the spinning threads steal the cores they wait for:
# 2-thread training measured ~10x slower than 1-thread. Passive waiting avoids that. It only
# works when set before the OpenMP runtime loads, hence here, before any ml module imports
# xgboost or scikit-learn; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
