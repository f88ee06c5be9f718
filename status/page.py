"""The status page: one self-contained HTML document (inline CSS and JS, no external assets).

It fetches ``status`` (relative to itself, so it works behind a path prefix)
every ``refresh_seconds`` and draws the pipeline's funnel (as the snapshot lists
its stages), the pools, money, the photo store, recent decisions and errors. A
``?token=...`` in the page's address is sent on as a Bearer header. The
server's Content-Security-Policy forbids every other origin, so the page
cannot fetch anything from the internet even by mistake.

The banner is red (never "Healthy") while the photo store is out (photo links
do not open for checkers, see engine/probe.py) or the spending limit holds
work; amber for work that waits longer than ``[Status] stuck_after_hours`` (the
list of waiting work, oldest first, says which), for work close to Toloka's
auto-accept, or errors in the last tick.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pipeline status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2433; background: #f6f7f9; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  .muted { color: #667085; }
  .card { background: #fff; border: 1px solid #d0d5dd; border-radius: 6px; padding: 10px 14px; margin-bottom: 12px; }
  .row { display: flex; gap: 12px; flex-wrap: wrap; }
  .row .card { flex: 1 1 260px; }
  .banner { padding: 8px 12px; border-radius: 6px; font-weight: 600; margin: 8px 0; }
  .ok { background: #e3f6e8; color: #165c2c; }
  .warn { background: #fdecc8; color: #7a4b00; }
  .bad { background: #fde2e1; color: #8a1c17; }
  .funnel .step { display: flex; align-items: center; gap: 8px; margin: 4px 0; }
  .funnel .label { width: 90px; text-align: right; }
  .funnel .bar { background: #3b6fd8; height: 22px; border-radius: 3px; min-width: 2px; }
  .funnel .n { font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaecf0; vertical-align: top; }
  th { font-weight: 600; color: #475467; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .scroll { max-height: 280px; overflow-y: auto; }
</style>
</head>
<body>
<h1 id="title">Pipeline</h1>
<div class="muted" id="ticks">waiting for the first status&hellip;</div>
<div id="banner" class="banner ok">loading</div>
<div class="row">
  <div class="card"><h2>Funnel</h2><div class="funnel" id="funnel"></div></div>
  <div class="card"><h2>Money</h2><table id="money"></table></div>
</div>
<div class="card"><h2>Pools</h2><table id="pools"></table></div>
<div class="card" id="waiting-card"><h2>Work that waits (oldest first)</h2><div id="waiting-line"></div>
  <div class="scroll"><table id="waiting"></table></div></div>
<div class="card"><h2>Photo store</h2><div id="store"></div><div class="scroll"><table id="outages"></table></div></div>
<div class="row">
  <div class="card"><h2>Checkers (learned quality, worst first)</h2>
    <div class="scroll"><table id="workers"></table></div></div>
  <div class="card"><h2>Held for a person</h2><div class="scroll"><table id="held"></table></div></div>
</div>
<div class="row">
  <div class="card"><h2>Recent decisions</h2><div class="scroll"><table id="decisions"></table></div></div>
  <div class="card"><h2>Errors</h2><div class="scroll"><table id="errors"></table></div></div>
</div>
<script>
"use strict";
const REFRESH_MS = __REFRESH__ * 1000;
const token = new URLSearchParams(location.search).get("token");

function cell(tag, text, cls) {
  const el = document.createElement(tag);
  el.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) el.className = cls;
  return el;
}
function fill(table, head, rows, numeric) {
  table.replaceChildren();
  const tr = document.createElement("tr");
  head.forEach((h, i) => tr.appendChild(cell("th", h, numeric && numeric[i] ? "num" : "")));
  table.appendChild(tr);
  rows.forEach(r => {
    const row = document.createElement("tr");
    r.forEach((v, i) => row.appendChild(cell("td", v, numeric && numeric[i] ? "num" : "")));
    table.appendChild(row);
  });
}
function when(text) { return text ? text.replace("T", " ").replace("Z", " UTC") : "-"; }
function hms(text) { return text ? text.slice(11, 19) : "-"; }
function ago(seconds) {
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.floor(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " days";
}

function draw(s) {
  const last = s.last_tick;
  document.getElementById("ticks").textContent =
    "ticks " + s.ticks + " | last tick " + (last ? when(last.at) + " (" + last.duration_seconds + " s, fetched " +
    last.fetched + ", decided " + last.decided + ", errors " + last.errors + ")" : "-") +
    " | next tick " + when(s.next_tick) + " | updated " + when(s.now);
  document.getElementById("title").textContent = s.pipeline + " pipeline";
  const banner = document.getElementById("banner");
  const errors = Object.values(s.pools).reduce((n, p) => n + p.errors, 0);
  const store = s.photo_store || {ok: true, probed: false, detail: "", since: null, checked: null};
  const wait = s.waiting || {count: 0, stuck: false, shown: [], stuck_after_hours: null, oldest_since: null};
  if (s.stale) {
    banner.className = "banner bad";
    banner.textContent = "Stale: no tick since " + (last ? when(last.at) : "the start") + ", longer than three " +
      "periods (" + s.stale_after_seconds + " s). The daemon is up but its ticks do not finish: see logs/pipeline.";
  } else if (!store.ok) {
    banner.className = "banner bad";
    banner.textContent = "Photo store outage: photo links do not open for checkers since " + when(store.since) +
      " (" + store.detail + "). Negative answers from this window will be voided and asked again.";
  } else if ((s.alarms || []).length) {
    banner.className = "banner bad";
    banner.textContent = "Alarm: " + s.alarms.join("; ");
  } else if (s.money.over_budget) {
    banner.className = "banner bad";
    banner.textContent = "Spending limit reached: " + s.money.spent + " of " + s.money.max_spend + "; held " +
      s.money.held_tasks + " task creations and " + s.money.held_bonuses + " bonuses. Raise [Pipeline] max_spend " +
      "in toloka.ini: it is read again every tick.";
  } else if (wait.stuck) {
    banner.className = "banner warn";
    banner.textContent = "Stuck: the oldest of " + wait.count + " waiting has waited since " +
      when(wait.oldest_since) + ", longer than [Status] stuck_after_hours (" + wait.stuck_after_hours + " h)";
  } else if (s.near_auto_accept.length) {
    banner.className = "banner warn";
    banner.textContent = s.near_auto_accept.length + " assignments under review are close to Toloka's auto-accept";
  } else if (last && last.errors) {
    banner.className = "banner warn";
    banner.textContent = "The last tick had " + last.errors + " errors (" + errors + " in all)";
  } else {
    banner.className = "banner ok";
    banner.textContent = "Healthy: " + s.under_review + " under review, " + s.pending_effects.total +
      " pending effects, " + errors + " errors in all";
  }
  const funnel = document.getElementById("funnel");
  funnel.replaceChildren();
  const top = Math.max(1, ...s.funnel.map(f => f.count));
  s.funnel.forEach(f => {
    const step = cell("div", "", "step");
    step.dataset.stage = f.stage;
    step.appendChild(cell("span", f.stage, "label"));
    const bar = cell("span", "", "bar");
    bar.style.width = Math.round(320 * f.count / top) + "px";
    step.appendChild(bar);
    step.appendChild(cell("span", f.count, "n"));
    funnel.appendChild(step);
  });
  const m = s.money;
  fill(document.getElementById("money"), ["", "amount"], [
    ["rewards", m.rewards], ["bonuses (" + m.bonuses_paid + ")", m.bonuses], ["spent", m.spent],
    ["max_spend", m.max_spend === null ? "no limit" : m.max_spend],
  ], [false, true]);
  const storeLine = document.getElementById("store");
  storeLine.className = store.ok ? "" : "banner bad";
  storeLine.textContent = !store.probed ? "not probed: " + store.detail
    : (store.ok ? "links open" + (store.since ? " again since " + when(store.since) : "") : "OUTAGE since " +
       when(store.since)) + " | last probe " + when(store.checked) + (store.ok ? " | " + store.detail : "");
  const outages = s.outages || [];
  fill(document.getElementById("outages"), ["outage from (UTC)", "to", "why"],
    outages.length ? outages.map(o => [when(o.start), o.end ? when(o.end) : "still out", o.detail])
                   : [["-", "", "no outage in the last 24 hours"]]);
  fill(document.getElementById("workers"),
    ["pool", "worker", "accuracy", "sensitivity", "specificity", "scored", "controls right", "restricted"],
    (s.workers || []).length ? s.workers.map(w => [w.pool, w.worker, w.accuracy, w.sensitivity, w.specificity,
                                                  w.scored, w.controls_right + "/" + w.controls, w.restricted])
                             : [["-", "no checker scored yet", "", "", "", "", "", ""]],
    [false, false, true, true, true, true, true, false]);
  fill(document.getElementById("held"), ["assignment", "why"],
    (s.held || []).length ? s.held.map(h => [h.id, h.reason]) : [["-", "nothing held"]]);
  const waitLine = document.getElementById("waiting-line");
  waitLine.className = wait.stuck ? "banner warn" : "muted";
  waitLine.textContent = wait.count + " waiting for a decision" +
    (wait.count > wait.shown.length ? ", the oldest " + wait.shown.length + " listed" : "") +
    (wait.stuck ? "; STUCK: older than " + wait.stuck_after_hours + " h" : "");
  fill(document.getElementById("waiting"), ["since (UTC)", "waited", "stage", "answers so far", "id", "what"],
    wait.shown.length ? wait.shown.map(w => [when(w.since), ago(w.waited_seconds), w.stage, w.answers, w.id, w.label])
                      : [["-", "", "", "", "", "nothing waits"]],
    [false, true, false, true, false, false]);
  const names = Object.keys(s.pools);
  fill(document.getElementById("pools"),
    ["pool", "id", "status", "fetched", "answers waiting", "groups waiting", "decisions", "errors", "pending effects",
     "near auto-accept", "rewards"],
    names.map(n => {
      const p = s.pools[n];
      const d = Object.entries(p.decisions).map(([k, v]) => k + " " + v).join(", ");
      return [n, p.pool_id, p.status, p.fetched, p.answers_waiting, p.groups_waiting, d, p.errors, p.pending_effects,
              p.near_auto_accept, p.rewards];
    }),
    [false, false, false, true, true, true, false, true, true, true, true]);
  fill(document.getElementById("decisions"), ["time (UTC)", "pool", "event", "assignment", "comment"],
    s.recent_decisions.map(e => [hms(e.at), e.pool, e.kind, e.text, e.detail]));
  fill(document.getElementById("errors"), ["time (UTC)", "pool", "what", "message"],
    s.recent_errors.length ? s.recent_errors.map(e => [hms(e.at), e.pool, e.kind, e.text])
                           : [["-", "", "no errors", ""]]);
  document.body.dataset.loaded = "yes";
}

async function refresh() {
  try {
    const resp = await fetch("status", {headers: token ? {"Authorization": "Bearer " + token} : {},
                                        cache: "no-store"});
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    draw(await resp.json());
  } catch (err) {
    const banner = document.getElementById("banner");
    banner.className = "banner bad";
    banner.textContent = "The daemon does not answer: " + err.message;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""


def render_page(refresh_seconds: int) -> str:
    """The page, refreshing itself every ``refresh_seconds``."""
    return _PAGE.replace("__REFRESH__", html.escape(str(int(refresh_seconds))))
