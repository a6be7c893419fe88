// The model card: champion and challenger side by side (metrics, training window, off-policy
// estimate), calibration and lift of both, feature importance of each, the gate's history.
// From /model/card.
"use strict";

const fmtm = dashboard;
const MODELS = { champion: "#1f77b4", challenger: "#ff7f0e" };
const NOT_RECORDED = "not recorded";

function number(x, digits = 4) {
  return x === null || x === undefined ? NOT_RECORDED : x.toFixed(digits);
}

function showCard(role, card, note) {
  const list = document.getElementById(`${role}-figures`);
  const box = document.getElementById(`${role}-note`);
  document.getElementById(`${role}-card`).dataset.version = card ? card.version : "";
  if (!card) {
    box.textContent = note;
    box.hidden = false;
    return;
  }
  const f = (name, label, value, text, small) => fmtm.figure(list, `${role}-${name}`, label, value, text, small);
  const h = card.holdout, t = card.training, o = card.off_policy;
  const promoted = card.promoted_at ? `promoted ${card.promoted_at.slice(0, 16).replace("T", " ")} by ${card.promoted_by}` : "never promoted";
  f("version", "Version", card.version, `v${card.version}`, `(${card.status}; registered ${fmtm.minute(card.registered_at)}; ${promoted})`);
  f("training-rows", "Training rows", t.rows, fmtm.number(t.rows), t.date_from ? `(${t.date_from} to ${t.date_to}, ${t.features} features)` : NOT_RECORDED);
  f("holdout-rows", "Holdout rows", h.rows, fmtm.number(h.rows), h.date_from ? `(${h.date_from} to ${h.date_to})` : NOT_RECORDED);
  const interval = h.auc_ci_low === null ? "interval not recorded (never gated)" : `95% DeLong ${number(h.auc_ci_low)} – ${number(h.auc_ci_high)}`;
  f("auc", "Holdout AUC", h.auc, number(h.auc), `(${interval})`);
  f("log-loss", "Log loss", h.log_loss, number(h.log_loss));
  f("brier", "Brier score", h.brier, number(h.brier));
  f("ece", "Expected calibration error", h.ece, number(h.ece));
  const ci = o.dr_ci_low === null ? "" : `95% CI ${fmtm.percent(o.dr_ci_low, 2)} – ${fmtm.percent(o.dr_ci_high, 2)}; `;
  f("ope-dr", "Off-policy value of the model's top arm (DR)", o.dr_value, o.dr_value === null ? NOT_RECORDED : fmtm.percent(o.dr_value, 2),
    `(${ci}logged policy ${fmtm.percent(o.logged_value, 2)} on ${fmtm.number(o.n)} decisions)`);
  const gate = card.gate;
  f("gate", "Gate", gate ? String(gate.passed) : "", gate ? (gate.passed ? "passed" : "refused") : NOT_RECORDED,
    gate && gate.value_gain ? `(off-policy value gain over v${gate.champion_version} ${fmtm.points(gate.value_gain.value)}, ` +
      `95% CI ${fmtm.points(gate.value_gain.low)} to ${fmtm.points(gate.value_gain.high)})` : gate ? "(no champion to compare with)" : "");
}

async function drawCharts(body) {
  const cards = ["champion", "challenger"].filter((r) => body[r]).map((r) => [r, body[r]]);
  const label = (role, card) => `${role} v${card.version}`;
  const calibration = [{ x: [0, 1], y: [0, 1], type: "scatter", mode: "lines", name: "perfect", line: { dash: "dot", color: "grey" } }];
  const lift = [];
  for (const [role, card] of cards) {
    if (card.calibration) calibration.push({ x: card.calibration.map((b) => b.mean_predicted), y: card.calibration.map((b) => b.observed_rate),
      type: "scatter", mode: "lines+markers", name: label(role, card), line: { color: MODELS[role] },
      hovertemplate: "predicted %{x:.2%}, observed %{y:.2%}<extra>" + label(role, card) + "</extra>" });
    if (card.lift) lift.push({ x: card.lift.map((d) => d.decile), y: card.lift.map((d) => d.lift), type: "bar", name: label(role, card),
      marker: { color: MODELS[role] }, hovertemplate: "decile %{x}: lift %{y:.2f}<extra>" + label(role, card) + "</extra>" });
  }
  const top = Math.max(0.01, ...calibration.slice(1).flatMap((t) => [...t.x, ...t.y])) * 1.05;
  calibration[0].x = [0, top];
  calibration[0].y = [0, top];
  const missing = (what) => cards.filter(([, c]) => !c[what]).map(([r, c]) => `${label(r, c)}: ${NOT_RECORDED}`).join("; ");
  await Plotly.newPlot("calibration-chart", calibration, fmtm.layout(`Calibration on the holdout (equal-count bins) ${missing("calibration")}`,
    { xaxis: { title: { text: "mean predicted" }, tickformat: ".1%", range: [0, top] }, yaxis: { title: { text: "observed rate" }, tickformat: ".1%", range: [0, top] } }),
    fmtm.config);
  await Plotly.newPlot("lift-chart", lift, fmtm.layout(`Lift by score decile (1 = highest scores) ${missing("lift")}`,
    { barmode: "group", xaxis: { dtick: 1 }, shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { dash: "dot" } }] }),
    fmtm.config);
  for (const role of ["champion", "challenger"]) {
    const card = body[role], div = `${role}-importance-chart`;
    if (!card || !card.importance) {
      document.getElementById(div).textContent = card ? `Feature importance of ${label(role, card)}: ${NOT_RECORDED}` : "";
      continue;
    }
    const rows = [...card.importance].reverse();
    await Plotly.newPlot(div, [{ x: rows.map((r) => r.share), y: rows.map((r) => r.feature), type: "bar", orientation: "h",
      marker: { color: MODELS[role] }, hovertemplate: "%{y}: %{x:.1%} of the total gain<extra></extra>" }],
    fmtm.layout(`Feature importance of ${label(role, card)} (top ${rows.length} of ${card.importance_features}, share of total gain)`,
      { xaxis: { tickformat: ".0%" }, yaxis: { automargin: true }, height: 480 }), fmtm.config);
  }
}

function gateHistory(rows) {
  const tbody = document.querySelector("#gate-history tbody");
  for (const g of rows) {
    const row = fmtm.addRow(tbody, [`v${g.version}`, fmtm.minute(g.registered_at), g.compared_with ? `v${g.compared_with}` : "no champion",
      g.verdict, number(g.auc_ci_low), g.log_loss_gain_low === null ? "—" : number(g.log_loss_gain_low, 5), g.status, g.reason], [4, 5]);
    row.dataset.version = g.version;
    row.dataset.verdict = g.verdict;
    row.className = g.passed ? "passed" : "refused";
  }
}

async function main() {
  try {
    const body = await fmtm.fetchJSON("/model/card");
    document.getElementById("model-name").textContent =
      `Registered model ${body.model_name}: ${body.versions} version(s). From what each retraining run logged to MLflow.`;
    showCard("champion", body.champion, body.champion_note);
    showCard("challenger", body.challenger, body.challenger_note);
    await drawCharts(body);
    gateHistory(body.gate_history);
    document.body.dataset.ready = "true";
  } catch (error) {
    fmtm.showError(error);
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", main);
