// Shared by the dashboard's pages: fetch the service's JSON, format figures for people.
"use strict";

const dashboard = {
  campaignId: () => document.body.dataset.campaignId,

  // The page's own query (since, until, days) passed on to the JSON endpoints.
  query: () => new URLSearchParams(
    [...new URLSearchParams(location.search)].filter(([, v]) => v !== "")
  ).toString(),

  // GET a JSON endpoint with the dashboard's cookie; an error names the service's detail.
  async fetchJSON(url) {
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(`${answer.status}: ${body.detail || answer.statusText}`);
    return body;
  },

  showError(error) {
    const box = document.getElementById("error");
    box.textContent = `Could not load the figures (${error.message}).`;
    box.hidden = false;
  },

  percent: (x, digits = 1) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(digits)}%`),
  points: (x) => (x === null || x === undefined ? "—" : `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(1)} pts`),
  number: (x, digits = 0) =>
    x === null || x === undefined ? "—"
      : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }),

  // An arm key's values, short enough for an axis: "offer_type=loan|channel=sms" -> "loan · sms".
  keyLabel: (key) => key.split("|").map((pair) => pair.split("=").pop()).join(" · "),

  // A timestamp of the service to the minute: "2026-12-01 19:48 UTC".
  minute: (iso) => `${iso.slice(0, 16).replace("T", " ")} UTC`,

  // A <dt>/<dd> pair; the raw value in data-value (the browser tests compare it to the JSON).
  figure(list, name, label, value, text, note) {
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.dataset.figure = name;
    detail.dataset.value = value === null || value === undefined ? "" : String(value);
    detail.textContent = text;
    if (note) {
      const small = document.createElement("small");
      small.textContent = ` ${note}`;
      detail.appendChild(small);
    }
    const pair = document.createElement("div");
    pair.className = "figure";
    pair.append(term, detail);
    list.appendChild(pair);
  },

  // A table row of text cells (numbers right-aligned); returns the row for its data attributes.
  addRow(tbody, cells, numeric = []) {
    const row = tbody.insertRow();
    cells.forEach((content, k) => {
      const cell = row.insertCell();
      if (content instanceof Node) cell.appendChild(content);
      else cell.textContent = content === null || content === undefined ? "—" : String(content);
      if (numeric.includes(k)) cell.className = "number";
    });
    return row;
  },

  layout: (title, extra = {}) => ({
    title: { text: title, x: 0.01, xanchor: "left", font: { size: 14 } },
    margin: { t: 56, r: 16, b: 56, l: 64 },
    legend: { orientation: "h", y: -0.2 },
    ...extra,
  }),
  config: { displaylogo: false, responsive: true },

  // A table row: ``data`` in its dataset (the browser tests read them), ``texts`` as cells, those
  // whose index ``numeric`` accepts right-aligned.
  row(tbody, data, texts, numeric = (k) => k > 0) {
    const row = tbody.insertRow();
    for (const [key, value] of Object.entries(data)) row.dataset[key] = value ?? "";
    texts.forEach((text, k) => {
      const cell = row.insertCell();
      cell.textContent = text;
      if (numeric(k)) cell.className = "number";
    });
    return row;
  },

  // Run a page's drawing once loaded; body[data-ready] says when it is done ("true") or failed.
  run(draw) {
    document.addEventListener("DOMContentLoaded", async () => {
      try {
        await draw();
        document.body.dataset.ready = "true";
      } catch (error) {
        dashboard.showError(error);
        document.body.dataset.ready = "error";
      }
    });
  },
};
