// Data quality and alerts: quarantined rows by reason and by day, rejected files, Great
// Expectations results with their data docs pages, and the alerts with Acknowledge/Resolve
// buttons (forms posted to /dashboard/alerts/{id}/{action}: see api/routes/dashboard_ops.py).
// From /quality and /alerts.
"use strict";

const fmtq = dashboard;
const DOCS = "/dashboard/data-docs/";

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

// A form that posts the alert's action; the page comes back with the row updated.
function actionForm(alert, action, label) {
  const form = document.createElement("form");
  form.method = "post";
  form.action = `/dashboard/alerts/${alert.alert_id}/${action}`;
  form.className = "alert-action";
  const button = document.createElement("button");
  button.type = "submit";
  button.name = "action";
  button.dataset.action = action;
  button.textContent = label;
  form.appendChild(button);
  return form;
}

function alertRows(alerts) {
  const tbody = document.querySelector("#alerts tbody");
  for (const a of alerts) {
    const status = a.status === "resolved" ? `resolved by ${a.resolved_by} ${fmtq.minute(a.resolved_at)}`
      : a.status === "acknowledged" ? `acknowledged by ${a.acknowledged_by} ${fmtq.minute(a.acknowledged_at)}` : "open";
    const actions = document.createElement("span");
    if (a.status === "open") actions.appendChild(actionForm(a, "acknowledge", "Acknowledge"));
    if (a.status !== "resolved") actions.appendChild(actionForm(a, "resolve", "Resolve"));
    const row = fmtq.addRow(tbody, [a.alert_id, a.alert_date, a.campaign || "—", a.kind, a.severity, status, a.message, actions], [0]);
    row.id = `alert-${a.alert_id}`;
    row.dataset.alertId = a.alert_id;
    row.dataset.status = a.status;
    row.className = `severity-${a.severity} status-${a.status}`;
  }
  if (!alerts.length) fmtq.addRow(tbody, ["No alert."]);
}

function showFigures(quality, alerts) {
  const list = document.getElementById("figures");
  const q = quality.quarantine, runs = quality.validations;
  const failed = runs.filter((v) => !v.success).length;
  const open = alerts.filter((a) => a.status !== "resolved");
  fmtq.figure(list, "quarantined-rows", "Quarantined rows", q.rows, fmtq.number(q.rows), `(${q.by_reason.length} reasons)`);
  fmtq.figure(list, "rejected-files", "Rejected inbox files", quality.rejected_files.length, fmtq.number(quality.rejected_files.length));
  fmtq.figure(list, "failed-validations", "Failed validations", failed, fmtq.number(failed), `(of the ${runs.length} newest)`);
  fmtq.figure(list, "open-alerts", "Alerts not resolved", open.length, fmtq.number(open.length),
    `(${open.filter((a) => a.severity === "critical").length} critical)`);
  const w = quality.window;
  document.getElementById("window").textContent = `Quarantine and rejected files of the logical dates ${w.since} to ${w.until} (${w.days} days).`;
}

async function drawCharts(q) {
  const reasons = q.by_reason.map((r) => r.reason);
  await Plotly.newPlot("reason-chart", [{ x: q.by_reason.map((r) => r.rows), y: reasons, type: "bar", orientation: "h",
    hovertemplate: "%{y}: %{x} rows<extra></extra>" }],
  fmtq.layout("Quarantined rows by reason", { yaxis: { automargin: true, autorange: "reversed" } }), fmtq.config);
  const days = [...new Set(q.by_day.map((d) => d.date))];
  const traces = reasons.map((reason) => ({ x: days, type: "bar", name: reason,
    y: days.map((day) => (q.by_day.find((d) => d.date === day && d.reason === reason) || { rows: 0 }).rows) }));
  await Plotly.newPlot("day-chart", traces, fmtq.layout("Quarantined rows by logical date", { barmode: "stack", xaxis: { type: "category" } }),
    fmtq.config);
}

function fileRows(files) {
  const tbody = document.querySelector("#rejected tbody");
  for (const f of files) {
    fmtq.addRow(tbody, [f.date, f.path, f.kind, fmtq.number(f.rows_read), fmtq.number(f.rows_quarantined), f.reason], [3, 4]).dataset.path = f.path;
  }
  if (!files.length) fmtq.addRow(tbody, ["No file rejected."]);
}

function holdRows(holds) {
  const tbody = document.querySelector("#holds tbody");
  for (const h of holds) {
    const status = h.released_at ? `released by ${h.released_by} ${fmtq.minute(h.released_at)}` : "held";
    const row = fmtq.addRow(tbody, [h.date, h.channel, h.landing, status, h.reason]);
    row.id = `hold-${h.channel}-${h.landing}-${h.date}`;
    row.dataset.status = h.released_at ? "released" : "held";
  }
  if (!holds.length) fmtq.addRow(tbody, ["No feedback held."]);
}

function validationRows(quality) {
  const index = document.getElementById("data-docs");
  if (quality.data_docs_index) {
    index.append("Every result's page: ", link(DOCS + quality.data_docs_index, "the data docs"), ".");
  } else {
    index.textContent = "No data docs site has been built yet.";
  }
  const tbody = document.querySelector("#validations tbody");
  for (const v of quality.validations) {
    const row = fmtq.addRow(tbody, [fmtq.minute(v.run_time), v.suite, v.batch,
      v.success ? `passed (${v.evaluated} expectations)` : `FAILED ${v.failed.length} of ${v.evaluated}`,
      v.failed.join(", ") || "—", v.data_docs_page ? link(DOCS + v.data_docs_page, "data docs") : "no page kept"]);
    row.dataset.batch = v.batch;
    row.dataset.success = v.success;
    row.className = v.success ? "passed" : "refused";
  }
  if (!quality.validations.length) fmtq.addRow(tbody, ["No validation has run yet."]);
}

async function main() {
  try {
    const [quality, body] = await Promise.all([fmtq.fetchJSON(`/quality?${fmtq.query()}`), fmtq.fetchJSON("/alerts")]);
    showFigures(quality, body.alerts);
    alertRows(body.alerts);
    await drawCharts(quality.quarantine);
    fileRows(quality.rejected_files);
    holdRows(quality.feedback_holds);
    validationRows(quality);
    document.body.dataset.ready = "true";
  } catch (error) {
    fmtq.showError(error);
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", main);
