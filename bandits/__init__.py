"""Bandit policies for campaign decisions: pure numpy, no I/O.

Build one with :func:`make_policy` (what a campaign file names), feed it statistics
with ``set_stats`` or ``partial_fit``, and call ``decide`` for a batch of customers;
``arm_probabilities`` gives the full (customers x arms) propensity matrix.
"""

__version__ = "0.1.0"

from bandits.base import (
    PHASE_INITIALIZATION,
    PHASE_LEARNING,
    PHASE_NONE,
    PHASE_OPTIMIZATION,
    SELECTED_BY_BANDIT,
    SELECTED_BY_BLEND,
    SELECTED_BY_MODEL,
    STRATEGY_EPSILON_GREEDY,
    STRATEGY_THOMPSON,
    STRATEGY_UCB,
    STRATEGY_UNIFORM,
    ChunkedPolicy,
    DecisionBatch,
    Policy,
)
from bandits.epsilon_greedy import EpsilonGreedy, EpsilonGreedyParams
from bandits.hybrid import (
    ConfidenceHybrid,
    ConfidenceHybridParams,
    ThompsonBlend,
    ThompsonBlendParams,
    UCBBlend,
    UCBBlendParams,
    quality_from_auc,
)
from bandits.igw import STRATEGY_IGW, IGWParams, InverseGapWeighting, igw_probabilities
from bandits.lifecycle import PHASES, Lifecycle, LifecycleParams
from bandits.registry import POLICY_NAMES, hyperparameters, make_policy
from bandits.rotation import Interleaved, InterleavedParams, Rotation, RotationParams
from bandits.thompson import (
    ThompsonParams,
    ThompsonSampling,
    empirical_bayes_strength,
    prior_from_stats,
)
from bandits.ucb import UCB, UCBParams
from bandits.uniform import UniformParams, UniformRandom

__all__ = [
    "PHASES",
    "PHASE_INITIALIZATION",
    "PHASE_LEARNING",
    "PHASE_NONE",
    "PHASE_OPTIMIZATION",
    "POLICY_NAMES",
    "SELECTED_BY_BANDIT",
    "SELECTED_BY_BLEND",
    "SELECTED_BY_MODEL",
    "STRATEGY_EPSILON_GREEDY",
    "STRATEGY_IGW",
    "STRATEGY_THOMPSON",
    "STRATEGY_UCB",
    "STRATEGY_UNIFORM",
    "UCB",
    "ChunkedPolicy",
    "ConfidenceHybrid",
    "ConfidenceHybridParams",
    "DecisionBatch",
    "EpsilonGreedy",
    "EpsilonGreedyParams",
    "IGWParams",
    "Interleaved",
    "InterleavedParams",
    "InverseGapWeighting",
    "Lifecycle",
    "LifecycleParams",
    "Policy",
    "Rotation",
    "RotationParams",
    "ThompsonBlend",
    "ThompsonBlendParams",
    "ThompsonParams",
    "ThompsonSampling",
    "UCBBlend",
    "UCBBlendParams",
    "UCBParams",
    "UniformParams",
    "UniformRandom",
    "empirical_bayes_strength",
    "hyperparameters",
    "igw_probabilities",
    "make_policy",
    "prior_from_stats",
    "quality_from_auc",
]
