// Customer segments: per segment sends, reward rate with its Wilson interval, the best arm by
// posterior mean and how sure the optimizer is (P(best), credible-interval width, runner-up).
// From /campaigns/{id}/segments.
"use strict";

const fs = dashboard;

function armText(arm) {
  return arm === null ? "—" : fs.keyLabel(arm.arm_key);
}

function segmentRows(body) {
  const rows = document.querySelector("#segments tbody");
  for (const s of body.segments) {
    const rate = s.reward_rate === null ? "no matured send"
      : `${fs.percent(s.reward_rate, 2)} (${fs.percent(s.ci_low, 1)} – ${fs.percent(s.ci_high, 1)})`;
    const best = s.best === null ? "no evidence yet"
      : armText(s.best) + (s.tied_arms > 1 ? ` (tied with ${s.tied_arms - 1} other${s.tied_arms > 2 ? "s" : ""})` : "");
    const cells = [
      s.segment, fs.number(s.sends), fs.number(s.matured), rate, best,
      s.best ? fs.percent(s.best.posterior_mean, 2) : "—",
      s.best ? fs.percent(s.best.prob_best, 1) : "—",
      s.best ? `${fs.percent(s.best.ci_width, 2)} (${fs.percent(s.best.ci_low, 1)} – ${fs.percent(s.best.ci_high, 1)})` : "—",
      s.runner_up ? `${armText(s.runner_up)}: ${fs.percent(s.runner_up.posterior_mean, 2)}, P(best) ${fs.percent(s.runner_up.prob_best, 1)}` : "—",
      s.gap === null ? "—" : fs.points(s.gap),
    ];
    fs.row(rows, {
      segment: s.segment, sends: s.sends, matured: s.matured, rewardRate: s.reward_rate,
      bestArmId: s.best?.arm_id, probBest: s.best?.prob_best, ciWidth: s.best?.ci_width,
    }, cells, (k) => k > 0 && k !== 4 && k !== 8);
  }
  const st = body.statistics;
  document.getElementById("source").textContent =
    `Reward: ${body.reward_kind}; prior Beta(${body.prior.alpha}, ${body.prior.beta}); P(best) among a segment's arms ` +
    `(${body.prob_best_method}); from ` +
    (st.source === "service_snapshot" ? `the service's live statistics (refreshed ${fs.minute(st.refreshed_at)})` : "the daily marts") +
    " — the figures of the Parameters page.";
}

async function segmentCharts(body) {
  const seen = body.segments.filter((s) => s.reward_rate !== null);
  await Plotly.newPlot("rate-chart",
    [{ x: seen.map((s) => s.segment), y: seen.map((s) => s.reward_rate), type: "bar", name: "Reward rate",
       error_y: { type: "data", symmetric: false, array: seen.map((s) => s.ci_high - s.reward_rate),
                  arrayminus: seen.map((s) => s.reward_rate - s.ci_low) },
       hovertemplate: "%{x}: %{y:.2%}<extra></extra>" }],
    fs.layout("Reward rate per segment (matured sends, Wilson 95% CI)", { yaxis: { tickformat: ".0%" } }), fs.config);
  await Plotly.newPlot("certainty-chart",
    [{ x: seen.map((s) => s.segment), y: seen.map((s) => s.best.prob_best), type: "bar", name: "P(best) of the best arm",
       text: seen.map((s) => armText(s.best)), hovertemplate: "%{x}: %{text}<br>P(best) %{y:.1%}<extra></extra>" },
     { x: seen.map((s) => s.segment), y: seen.map((s) => s.best.ci_width), type: "scatter", mode: "markers",
       name: "Its credible-interval width", yaxis: "y2", hovertemplate: "%{x}: width %{y:.2%}<extra></extra>" }],
    fs.layout("How sure: P(best) of each segment's best arm, and its 95% credible-interval width",
      { yaxis: { tickformat: ".0%", range: [0, 1] }, yaxis2: { tickformat: ".0%", overlaying: "y", side: "right", rangemode: "tozero" } }),
    fs.config);
}

fs.run(async () => {
  const body = await fs.fetchJSON(`/campaigns/${fs.campaignId()}/segments`);
  segmentRows(body);
  await segmentCharts(body);
});
