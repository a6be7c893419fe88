// Algorithm diagnostics: exploration, allocation per arm, posterior width and regret per decision
// day, days to converge, and off-policy estimates (IPS, SNIPS, DR) of candidate policies on the
// window's logged decisions. From /campaigns/{id}/diagnostics.
"use strict";

const fd = dashboard;
const ESTIMATORS = [["ips", "IPS"], ["snips", "SNIPS"], ["dr", "DR"]];

function interval(e) {
  return e === null ? "—" : `${fd.percent(e.value, 2)} (${fd.percent(e.ci_low, 1)} – ${fd.percent(e.ci_high, 1)})`;
}

function showFigures(body) {
  const list = document.getElementById("figures");
  const c = body.convergence, ope = body.off_policy;
  fd.figure(list, "treatment-decisions", "Treatment decisions", body.treatment_decisions, fd.number(body.treatment_decisions));
  fd.figure(list, "exploration-rate", "Exploration rate", body.exploration_rate, fd.percent(body.exploration_rate),
    "(decisions flagged explored)");
  const arm = body.arms.find((a) => a.arm_id === c.arm_id);
  fd.figure(list, "days-to-converge", "Days to converge", c.days_to_converge,
    c.converged ? `${c.days_to_converge} days` : "not yet",
    c.converged ? `(since ${c.since}: ${fd.keyLabel(arm.arm_key)} takes ≥ ${fd.percent(c.share, 0)} of the sends)` : `(${c.reason})`);
  fd.figure(list, "window-regret", "Regret of the window's choices", body.window_regret, fd.number(body.window_regret, 2),
    "(expected conversions lost vs the best arm, by posterior means)");
  fd.figure(list, "regret-estimate", "Regret estimate (daily build)", body.regret.estimate,
    fd.number(body.regret.estimate, 2), body.regret.reason ? `(${body.regret.reason})` : "(all matured decisions)");
  fd.figure(list, "observed-value", "Observed reward per decision", ope.observed_value, fd.percent(ope.observed_value, 2),
    `(${fd.number(ope.logged_decisions)} matured treatment decisions)`);
  const w = body.window;
  document.getElementById("as-of").textContent =
    `Decisions of ${w.since} to ${w.until} (${w.days} days), as of ${fd.minute(body.as_of)}; policy ${body.policy}.`;
}

async function dailyCharts(body) {
  const days = body.days, x = days.map((d) => d.date);
  await Plotly.newPlot("exploration-chart", [
    { x, y: days.map((d) => d.exploration_rate), type: "scatter", mode: "lines+markers", name: "Exploration rate", connectgaps: false },
    { x, y: days.map((d) => d.mean_propensity), type: "scatter", mode: "lines+markers", name: "Mean propensity of the chosen arm",
      line: { dash: "dot" }, connectgaps: false },
  ], fd.layout("Exploration per decision day", { yaxis: { tickformat: ".0%", range: [0, 1.05] } }), fd.config);
  // the days with treatment decisions only: a day without any has no allocation to stack
  const decided = days.filter((d) => d.allocation !== null);
  const allocation = body.arms.map((a, k) => ({
    x: decided.map((d) => d.date), y: decided.map((d) => d.allocation[k]), type: "scatter", mode: "lines+markers",
    stackgroup: "allocation", name: fd.keyLabel(a.arm_key), hovertemplate: "%{x}: %{y:.1%}<extra>%{fullData.name}</extra>",
  }));
  await Plotly.newPlot("allocation-chart", allocation,
    fd.layout("Allocation of the treatment sends per arm", { yaxis: { tickformat: ".0%", range: [0, 1] } }), fd.config);
  await Plotly.newPlot("width-chart", [
    { x, y: days.map((d) => d.mean_posterior_width), type: "scatter", mode: "lines", name: "Mean 95% credible-interval width" },
    { x, y: days.map((d) => d.allocation_entropy), type: "scatter", mode: "lines+markers", name: "Allocation entropy (0 one arm, 1 even)",
      yaxis: "y2", connectgaps: false },
  ], fd.layout("Posterior width (evidence of the window through each day) and allocation entropy",
    { yaxis: { tickformat: ".1%" }, yaxis2: { overlaying: "y", side: "right", range: [0, 1] } }), fd.config);
  await Plotly.newPlot("regret-chart",
    [{ x, y: days.map((d) => d.cumulative_regret), type: "scatter", mode: "lines", name: "Cumulative regret" }],
    fd.layout("Cumulative regret of the treatment choices (conversions, by posterior means)"), fd.config);
}

async function offPolicy(ope) {
  document.getElementById("ope-note").textContent = ope.reason ||
    `On ${fd.number(ope.logged_decisions)} matured treatment decisions (left out: ${ope.left_out.control} holdout, ` +
    `${ope.left_out.pending} pending, ${ope.left_out.unknown_segment_or_retired_arm} without a segment or on a retired arm); ` +
    `each candidate acts per segment on today's statistics; DR's reward model: ${ope.reward_model}; ` +
    `${fd.percent(ope.confidence, 0)} normal intervals.`;
  const rows = document.querySelector("#estimates tbody");
  for (const p of ope.policies) {
    const cells = [`${p.policy} — ${p.description}${p.reason ? ` (${p.reason})` : ""}`,
      ...ESTIMATORS.map(([key]) => interval(p[key])), p.ips === null ? "—" : fd.number(p.ips.effective_sample_size, 1)];
    fd.row(rows, { policy: p.policy, ...Object.fromEntries(ESTIMATORS.map(([key]) => [key, p[key]?.value])) }, cells);
  }
  const shown = ope.policies.filter((p) => p.ips !== null);
  const traces = ESTIMATORS.map(([key, label]) => {
    const has = shown.filter((p) => p[key] !== null);
    return { x: has.map((p) => p.policy), y: has.map((p) => p[key].value), type: "scatter", mode: "markers", name: label,
      error_y: { type: "data", symmetric: false, array: has.map((p) => p[key].ci_high - p[key].value),
                 arrayminus: has.map((p) => p[key].value - p[key].ci_low) },
      hovertemplate: `%{x}: ${label} %{y:.2%}<extra></extra>` };
  });
  await Plotly.newPlot("ope-chart", traces, fd.layout("Estimated reward per decision with 95% CI",
    { yaxis: { tickformat: ".0%" }, scattermode: "group",
      shapes: ope.observed_value === null ? [] : [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: ope.observed_value,
        y1: ope.observed_value, line: { dash: "dot" } }] }), fd.config);
}

fd.run(async () => {
  const body = await fd.fetchJSON(`/campaigns/${fd.campaignId()}/diagnostics?${fd.query()}`);
  showFigures(body);
  await dailyCharts(body);
  await offPolicy(body.off_policy);
});
