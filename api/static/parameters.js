// Parameter performance: per arm the posterior mean with its credible interval and P(best), and
// heatmaps of posterior means (credible interval on hover). From /parameters/performance and
// /parameters/heatmaps.
"use strict";

const fmtp = dashboard;
const LABELS = { offer_type: "Offer", channel: "Channel", time_of_day: "Time of day", day_of_week: "Day of week",
  segment: "Customer segment", arm: "Arm" };

function armRows(body) {
  const rows = document.querySelector("#arms tbody");
  for (const arm of body.arms) {
    const row = rows.insertRow();
    row.dataset.armId = arm.arm_id;
    row.dataset.probBest = arm.prob_best;
    row.dataset.posteriorMean = arm.posterior_mean;
    row.dataset.sends = arm.sends;
    const cells = [
      fmtp.keyLabel(arm.arm_key) + (arm.is_default ? " (default, the holdout's)" : ""),
      fmtp.number(arm.sends), fmtp.number(arm.matured), fmtp.number(arm.rewards, 1),
      fmtp.percent(arm.posterior_mean, 2),
      `${fmtp.percent(arm.ci_low, 2)} – ${fmtp.percent(arm.ci_high, 2)}`,
      fmtp.percent(arm.prob_best, 1),
    ];
    cells.forEach((text, k) => {
      const cell = row.insertCell();
      cell.textContent = text;
      if (k > 0) cell.className = "number";
    });
  }
  const s = body.statistics;
  document.getElementById("source").textContent =
    `Reward: ${body.reward_kind}; prior Beta(${body.prior.alpha}, ${body.prior.beta}); from ` +
    (s.source === "service_snapshot" ? `the service's live statistics (refreshed ${fmtp.minute(s.refreshed_at)})` : "the daily marts") +
    (s.marts_as_of ? `, daily build of ${s.marts_as_of}` : ", no daily build yet") +
    (s.realtime_matured_through ? `, real-time feedback matured through ${s.realtime_matured_through}` : "") + ".";
}

async function armCharts(body) {
  const names = body.arms.map((a) => fmtp.keyLabel(a.arm_key));
  await Plotly.newPlot("prob-best-chart",
    [{ x: names, y: body.arms.map((a) => a.prob_best), type: "bar", name: "P(best)",
       hovertemplate: "%{x}<br>P(best) %{y:.1%}<extra></extra>" }],
    fmtp.layout("Probability of being the best arm", { yaxis: { tickformat: ".0%", range: [0, 1] } }), fmtp.config);
  await Plotly.newPlot("arm-chart",
    [{ x: names, y: body.arms.map((a) => a.posterior_mean), type: "scatter", mode: "markers", name: "Posterior mean",
       error_y: { type: "data", symmetric: false, array: body.arms.map((a) => a.ci_high - a.posterior_mean),
                  arrayminus: body.arms.map((a) => a.posterior_mean - a.ci_low) },
       hovertemplate: "%{x}<br>posterior mean %{y:.2%}<extra></extra>" }],
    fmtp.layout("Posterior mean reward per arm with its 95% credible interval", { yaxis: { tickformat: ".1%" } }),
    fmtp.config);
}

async function heatmap(map, index) {
  const div = document.createElement("div");
  div.className = "chart heatmap";
  div.id = `heatmap-${index}`;
  div.dataset.rows = map.rows_parameter;
  div.dataset.columns = map.columns_parameter;
  document.getElementById("heatmaps").appendChild(div);
  const value = (key) => map.cells.map((row) => row.map((cell) => (cell === null ? null : cell[key])));
  const hover = map.cells.map((row) => row.map((cell) => (cell === null ? "not on offer"
    : `posterior mean ${fmtp.percent(cell.posterior_mean, 2)}<br>95% credible interval ` +
      `${fmtp.percent(cell.ci_low, 2)} – ${fmtp.percent(cell.ci_high, 2)}<br>` +
      `matured sends ${fmtp.number(cell.matured)}, reward ${fmtp.number(cell.rewards, 1)}<br>` +
      `P(best) ${fmtp.percent(cell.prob_best)}`)));
  const rows = LABELS[map.rows_parameter] || map.rows_parameter;
  const columns = LABELS[map.columns_parameter] || map.columns_parameter;
  const shownColumns = map.rows_parameter === "segment" ? map.columns.map(fmtp.keyLabel) : map.columns;
  await Plotly.newPlot(div,
    [{ z: value("posterior_mean"), x: shownColumns, y: map.rows, text: hover, type: "heatmap", colorscale: "Viridis",
       hovertemplate: `${rows} %{y}, ${columns} %{x}<br>%{text}<extra></extra>`,
       colorbar: { tickformat: ".1%", title: { text: "posterior mean" } } }],
    fmtp.layout(`${rows} × ${columns}: posterior mean reward`,
      { xaxis: { type: "category", automargin: true }, yaxis: { type: "category", automargin: true }, height: 420 }),
    fmtp.config);
}

// The untested arms panel (GET /campaigns/{id}/suggestions): one row per suggestion, its diff
// folded under the row, then the edge proposals.
function suggestionRows(report) {
  const basis = document.getElementById("suggestions-basis");
  basis.dataset.basis = report.basis;
  const best = report.best_arm;
  basis.textContent = `Ranked by the ${report.basis} (${report.note}), by mean + ${report.k} × uncertainty; ` +
    `the best arm sent today is ${fmtp.keyLabel(best.arm_key)} at ${fmtp.percent(best.mean, 2)}. ` +
    "Apply a diff to the campaign file, then `campaignopt campaign apply FILE`.";
  const rows = document.querySelector("#suggestions tbody");
  [...report.suggestions, ...report.edges].forEach((s, k) => {
    const row = rows.insertRow();
    row.dataset.armKey = s.arm_key;
    row.dataset.mean = String(s.mean);
    const diff = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "show";
    const code = document.createElement("pre");
    code.textContent = s.diff;
    diff.append(summary, code);
    const rank = k < report.suggestions.length ? String(k + 1) : "edge";
    const texts = [rank, fmtp.keyLabel(s.arm_key), s.change.summary, fmtp.percent(s.mean, 2), fmtp.percent(s.uncertainty, 2),
      fmtp.points(s.lift_vs_best)];
    texts.forEach((text, i) => {
      const cell = row.insertCell();
      cell.textContent = text;
      if (i >= 3) cell.className = "number";
    });
    row.insertCell().appendChild(diff);
  });
}

async function main() {
  const id = fmtp.campaignId();
  try {
    const [body, maps] = await Promise.all([
      fmtp.fetchJSON(`/campaigns/${id}/parameters/performance`),
      fmtp.fetchJSON(`/campaigns/${id}/parameters/heatmaps`),
    ]);
    armRows(body);
    await armCharts(body);
    for (const [k, map] of maps.heatmaps.entries()) await heatmap(map, k);
    suggestionRows(await fmtp.fetchJSON(`/campaigns/${id}/suggestions`));
    document.body.dataset.ready = "true";
  } catch (error) {
    fmtp.showError(error);
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", main);
