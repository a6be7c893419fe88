// The fair-lending monitor: per offer and protected attribute, each group's share of the eligible
// audience against its share of the offer's recipients, and the variance between the two.
// From /campaigns/{id}/fairness.
"use strict";

const ff = dashboard;

function offerName(o) {
  return `${o.parameter}=${o.value}`;
}

function flagText(o) {
  const reasons = (o.over_variance ? ["variance"] : []).concat(o.under_represented.map((g) => `${g} short`));
  return reasons.length ? reasons.join(", ") : "no";
}

function offerRows(body) {
  const rows = document.querySelector("#offers tbody");
  for (const o of body.offers) {
    const row = ff.row(rows, {
      offer: offerName(o), attribute: o.attribute, recipients: o.recipients, variance: o.variance, flagged: o.flagged,
    }, [offerName(o), o.attribute, ff.number(o.recipients), ff.percent(o.variance),
        `${ff.percent(o.variance_low)} – ${ff.percent(o.variance_high)}`, flagText(o)],
    (k) => k >= 2 && k <= 4);
    if (o.flagged) row.className = "flagged";
  }
  const t = body.thresholds;
  document.getElementById("as-of").textContent =
    `List of ${body.date}: ${ff.number(body.eligible)} eligible customers, ${ff.number(body.treatment)} in treatment. ` +
    `Variance is the share of an offer's recipients that would have to change group to look like the eligible ` +
    `audience; flagged when its 95% interval lies above ${ff.percent(t.max_variance, 0)}, or a group's share is ` +
    `significantly below ${ff.percent(t.min_share_ratio, 0)} of its eligible share (at least ${t.min_recipients} recipients).`;
}

async function offerCharts(body) {
  const box = document.getElementById("charts");
  for (const [k, o] of body.offers.entries()) {
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.id = `offer-chart-${k}`;
    box.appendChild(chart);
    const groups = o.groups.map((g) => g.group);
    await Plotly.newPlot(chart.id, [
      { x: groups, y: o.groups.map((g) => g.eligible_share), type: "bar", name: "Eligible audience",
        hovertemplate: "%{x}: %{y:.1%} of the eligible<extra></extra>" },
      { x: groups, y: o.groups.map((g) => g.recipient_share), type: "bar", name: "Recipients",
        error_y: { type: "data", symmetric: false, array: o.groups.map((g) => g.recipient_share_high - g.recipient_share),
                   arrayminus: o.groups.map((g) => g.recipient_share - g.recipient_share_low) },
        hovertemplate: "%{x}: %{y:.1%} of the recipients<extra></extra>" },
    ], ff.layout(`${offerName(o)} by ${o.attribute}: variance ${ff.percent(o.variance)}${o.flagged ? " (flagged)" : ""}`,
      { barmode: "group", yaxis: { tickformat: ".0%", rangemode: "tozero" } }), ff.config);
  }
}

ff.run(async () => {
  const day = new URLSearchParams(location.search).get("day");
  const body = await ff.fetchJSON(`/campaigns/${ff.campaignId()}/fairness${day ? `?day=${day}` : ""}`);
  offerRows(body);
  await offerCharts(body);
});
