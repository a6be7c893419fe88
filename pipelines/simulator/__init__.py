"""A simulated bank for judging policies: customers, a ground-truth response, a closed loop.

Public API
----------
generate_customers(n, seed) -> DataFrame
    The synthetic customer base (``customer_id`` "C0000001", ... + CUSTOMER_COLUMNS).
interactions_for_send_list(send_list_df, customers_df, campaign_arms_df, day, seed, lag_days)
    Interaction events (impression ... conversion) for a published send list.
load_scenario(path) -> Scenario
    A validated scenario file (UserError naming the file and field).
run_simulation(scenario, policies, seeds, ...) -> SimulationReport
    Policies and baselines through the closed loop, summarized over seeds.
simulate_run(scenario, policies, seed, ...) -> RunResult
    One seed, raw daily curves.
plot_report(report, path)
    Cumulative regret and daily conversion curves as a PNG.
GroundTruth, World
    The response model and one seeded world, for tests and notebooks.
"""

from pipelines.simulator.experiment import run_simulation
from pipelines.simulator.interactions import EVENT_COLUMNS, interactions_for_send_list
from pipelines.simulator.loop import RunResult, simulate_run
from pipelines.simulator.population import generate_customers
from pipelines.simulator.report import PolicySummary, SimulationReport, plot_report
from pipelines.simulator.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from pipelines.simulator.truth import GroundTruth
from pipelines.simulator.world import World

__all__ = [
    "DEFAULT_SCENARIO",
    "EVENT_COLUMNS",
    "GroundTruth",
    "PolicySummary",
    "RunResult",
    "Scenario",
    "SimulationReport",
    "World",
    "generate_customers",
    "interactions_for_send_list",
    "load_scenario",
    "plot_report",
    "run_simulation",
    "simulate_run",
]
