// Campaign performance: figures of the window, conversion per day with Wilson bands, cumulative
// lift with its CI, sends per group. From /campaigns/{id}/performance and .../performance/daily.
"use strict";

const COLORS = { treatment: "#1f77b4", control: "#ff7f0e" };
const fmt = dashboard;

function showFigures(perf, daily) {
  const list = document.getElementById("figures");
  const t = perf.treatment, c = perf.control, lift = perf.lift;
  fmt.figure(list, "treatment-sends", "Treatment sends", t.sends, fmt.number(t.sends), `(${fmt.number(t.pending)} pending)`);
  fmt.figure(list, "control-sends", "Holdout sends", c.sends, fmt.number(c.sends), `(${fmt.number(c.pending)} pending)`);
  fmt.figure(list, "treatment-rate", "Treatment conversion", t.conversion_rate, fmt.percent(t.conversion_rate, 2),
    `(${t.conversions} of ${t.matured} matured)`);
  fmt.figure(list, "control-rate", "Holdout conversion", c.conversion_rate, fmt.percent(c.conversion_rate, 2),
    `(${c.conversions} of ${c.matured} matured)`);
  const ci = lift.absolute === null ? lift.reason : `95% CI ${fmt.points(lift.ci_low)} to ${fmt.points(lift.ci_high)}`;
  fmt.figure(list, "lift", "Lift (treatment − holdout)", lift.absolute, fmt.points(lift.absolute), `(${ci})`);
  fmt.figure(list, "relative-lift", "Relative lift", lift.relative, fmt.percent(lift.relative));
  fmt.figure(list, "revenue", "Revenue attributed", perf.revenue, fmt.number(perf.revenue, 2));
  fmt.figure(list, "cost", "Cost of sends", perf.cost, fmt.number(perf.cost, 2));
  fmt.figure(list, "roi", "Return on investment", perf.roi, fmt.percent(perf.roi), "((revenue − cost) / cost)");
  fmt.figure(list, "treatment-ctr", "Treatment click-through", t.click_through_rate, fmt.percent(t.click_through_rate, 2),
    `(${t.clicks} clicks; ${fmt.percent(t.open_rate)} opened, ${fmt.percent(t.view_rate)} viewed)`);
  fmt.figure(list, "control-ctr", "Holdout click-through", c.click_through_rate, fmt.percent(c.click_through_rate, 2),
    `(${c.clicks} clicks; ${fmt.percent(c.open_rate)} opened, ${fmt.percent(c.view_rate)} viewed)`);
  fmt.figure(list, "treatment-dwell", "Treatment dwell per view", t.dwell_seconds_per_view,
    t.dwell_seconds_per_view === null ? "—" : `${fmt.number(t.dwell_seconds_per_view, 1)} s`, "(on the landing page)");
  fmt.figure(list, "exploration", "Exploration share", perf.exploration_share, fmt.percent(perf.exploration_share));
  const srm = daily.sample_ratio;
  const verdict = srm.mismatch === null ? srm.reason
    : srm.mismatch ? "MISMATCH: the holdout is not assigned as configured"
    : "consistent with the configured share";
  const pValue = srm.p_value === null ? "" : `, chi-square p = ${srm.p_value.toPrecision(3)}`;
  fmt.figure(list, "holdout-share", "Holdout share (sample ratio)", srm.observed_share, fmt.percent(srm.observed_share),
    `(expected ${fmt.percent(srm.expected_share)}${pValue}: ${verdict})`);
  const box = document.getElementById("srm");
  box.dataset.mismatch = String(srm.mismatch);
  box.textContent = srm.mismatch ? `Sample ratio mismatch: the holdout got ${fmt.percent(srm.observed_share)} of the sends, ` +
    `${fmt.percent(srm.expected_share)} expected (p = ${srm.p_value === null ? "—" : srm.p_value.toPrecision(3)}); ` +
    "the lift is not trustworthy until the assignment is fixed." : "";
  box.className = srm.mismatch ? "srm alarm" : "srm";
  document.getElementById("as-of").textContent =
    `Decisions of ${perf.window.since} to ${perf.window.until} (${perf.window.days} days), as of ${fmt.minute(perf.as_of)}; ` +
    `decisions through ${perf.matured_through} have matured (attribution window ${perf.attribution_window_days} days).`;
}

// A line with its interval as a shaded band: two traces (band, then line). Days without a value
// (nothing matured) are left out of the band, which would otherwise break at every gap.
function banded(x, low, mid, high, name, color) {
  const kept = x.map((_, k) => k).filter((k) => mid[k] !== null);
  const pick = (values) => kept.map((k) => values[k]);
  const [bx, blow, bhigh] = [pick(x), pick(low), pick(high)];
  return [
    { x: [...bx, ...[...bx].reverse()], y: [...bhigh, ...[...blow].reverse()], type: "scatter", mode: "lines", fill: "toself",
      fillcolor: `${color}33`, line: { width: 0 }, hoverinfo: "skip", showlegend: false, name: `${name} 95% CI` },
    { x, y: mid, type: "scatter", mode: "lines+markers", name, line: { color }, connectgaps: false,
      hovertemplate: "%{x}: %{y:.2%}<extra>" + name + "</extra>" },
  ];
}

// Opens, clicks, views and conversions per matured send, treatment beside holdout.
function engagementTraces(perf) {
  const steps = [["open_rate", "Opened"], ["click_through_rate", "Clicked"], ["view_rate", "Viewed"], ["conversion_rate", "Converted"]];
  return ["treatment", "control"].map((g) => ({
    x: steps.map(([, label]) => label), y: steps.map(([k]) => perf[g][k]), type: "bar",
    name: g === "treatment" ? "Treatment" : "Holdout", marker: { color: COLORS[g] },
    hovertemplate: "%{x}: %{y:.2%}<extra>" + g + "</extra>",
  }));
}

async function drawCharts(perf, daily) {
  const days = daily.days, x = days.map((d) => d.date);
  const band = (g, k) => days.map((d) => (d[g][k] === null ? null : d[g][k]));
  const conversion = ["treatment", "control"].flatMap((g) =>
    banded(x, band(g, "ci_low"), band(g, "conversion_rate"), band(g, "ci_high"), g === "treatment" ? "Treatment" : "Holdout", COLORS[g]));
  await Plotly.newPlot("conversion-chart", conversion,
    fmt.layout("Conversion per decision day (matured sends, Wilson 95% band)", { yaxis: { tickformat: ".0%" } }), fmt.config);
  // the lift so far, drawn on the days that added matured decisions
  const lifts = days.map((d) => (d.treatment.matured + d.control.matured ? d.cumulative_lift : {}))
    .map((l) => ({ absolute: l.absolute ?? null, ci_low: l.ci_low ?? null, ci_high: l.ci_high ?? null }));
  await Plotly.newPlot("lift-chart",
    banded(x, lifts.map((l) => l.ci_low), lifts.map((l) => l.absolute), lifts.map((l) => l.ci_high), "Lift", "#2ca02c"),
    fmt.layout("Lift so far (first day of the window through each day, Newcombe 95% CI)",
      { yaxis: { tickformat: "+.1%" }, shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0, y1: 0, line: { dash: "dot" } }] }),
    fmt.config);
  const sends = ["treatment", "control"].map((g) => ({
    x, y: days.map((d) => d[g].sends), type: "bar", name: g === "treatment" ? "Treatment" : "Holdout", marker: { color: COLORS[g] },
  }));
  await Plotly.newPlot("sends-chart", sends, fmt.layout("Sends per decision day", { barmode: "stack" }), fmt.config);
  await Plotly.newPlot("engagement-chart", engagementTraces(perf),
    fmt.layout("Engagement funnel (share of matured sends)", { barmode: "group", yaxis: { tickformat: ".0%" } }), fmt.config);
}

async function main() {
  const id = fmt.campaignId(), query = fmt.query();
  try {
    const [perf, daily] = await Promise.all([
      fmt.fetchJSON(`/campaigns/${id}/performance?${query}`),
      fmt.fetchJSON(`/campaigns/${id}/performance/daily?${query}`),
    ]);
    showFigures(perf, daily);
    await drawCharts(perf, daily);
    document.body.dataset.ready = "true";
  } catch (error) {
    fmt.showError(error);
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", main);
