// streamtrack live view: plain canvas charts over the JSON API, live through /events (SSE).
// Message text is untrusted: it is only ever set with textContent, never parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const state = {
    rules: [], pinned: new Set(JSON.parse(localStorage.getItem("st-pinned") || "[]")),
    series: new Map(), minutes: new Map(), cards: new Map(), dirty: new Set(),
    selected: null, refreshTimer: null, lastGapAt: 0,
  };

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: Object.assign({ "Content-Type": "application/json" }, headers) }, opts || {}));
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
    return { status: r.status, body };
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const q = encodeURIComponent;
  const hms = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  const hm = (t) => new Date(t).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });

  // ---- rules --------------------------------------------------------------------------
  async function loadRules() {
    const r = await api("/api/rules?sort=" + q($("sort").value));
    if (r.status !== 200) return;
    state.rules = r.body.rules;
    renderRuleList();
    layoutCards();
  }

  // What the charts show: rules, or tags (their rules summed). A tag's key is "#tag:" + tag.
  const TAG = "#tag:";
  const sel = (key) => key.startsWith(TAG) ? "tag=" + q(key.slice(TAG.length)) : "rule=" + q(key);
  const keyOfRule = (id) => {
    if ($("group").value !== "tag") return id;
    const r = state.rules.find((x) => x.id === id);
    return r && r.tag ? TAG + r.tag : null;
  };
  function items() {
    if ($("group").value !== "tag") return state.rules;
    const by = new Map();
    for (const r of state.rules) {
      if (!r.tag) continue;
      const t = by.get(r.tag) || { id: TAG + r.tag, name: "#" + r.tag, value: "", rate: 0, burst_score: 0, n: 0 };
      t.rate += r.rate || 0; t.burst_score = Math.max(t.burst_score, r.burst_score || 0); t.n++;
      t.value += (t.value ? ", " : "") + r.id;
      by.set(r.tag, t);
    }
    const key = $("sort").value === "burst" ? "burst_score" : "rate";
    return [...by.values()].sort((a, b) => b[key] - a[key]);
  }
  function shownRules() {
    const n = parseInt($("top-n").value, 10);
    const all = items();
    const out = [];
    for (const r of all) if (state.pinned.has(r.id)) out.push(r);
    for (const r of all) {
      if (out.length >= Math.max(n, state.pinned.size)) break;
      if (!state.pinned.has(r.id)) out.push(r);
    }
    return out;
  }

  function renderRuleList() {
    const ul = $("rule-list");
    ul.replaceChildren();
    for (const r of state.rules) {
      const li = el("li");
      li.dataset.rule = r.id;
      li.append(el("span", "rn", r.id), el("span", "rv", r.value));
      const pin = el("button", "pin", state.pinned.has(r.id) ? "unpin" : "pin");
      pin.title = "keep this rule's chart on screen";
      pin.onclick = () => togglePin(r.id);
      const rm = el("button", "remove", "remove");
      rm.onclick = () => removeRule(r.id);
      li.append(pin, rm);
      ul.append(li);
    }
  }

  function togglePin(id) {
    if (state.pinned.has(id)) state.pinned.delete(id); else state.pinned.add(id);
    localStorage.setItem("st-pinned", JSON.stringify([...state.pinned]));
    renderRuleList();
    layoutCards();
  }

  async function removeRule(id) {
    const r = await api("/api/rules/" + q(id), { method: "DELETE" });
    if (r.status !== 204) showError(r.body && r.body.error || "could not remove", null);
    state.pinned.delete(id);
    await loadRules();
  }

  function showError(msg, column) {
    const box = $("rule-error");
    box.hidden = false;
    box.textContent = column ? "column " + column + ": " + msg : msg;
    $("rule-caret").textContent = column ? " ".repeat(Math.max(0, column - 1)) + "^" : "";
  }
  function clearError() {
    $("rule-error").hidden = true; $("rule-error").textContent = ""; $("rule-caret").textContent = "";
  }

  function ruleBody() {
    const b = { value: $("rule-value").value, dialect: $("rule-dialect").value };
    if ($("rule-id").value.trim()) b.id = $("rule-id").value.trim();
    if ($("rule-tag").value.trim()) b.tag = $("rule-tag").value.trim();
    return JSON.stringify(b);
  }

  async function dryRun() {
    clearError();
    const r = await api("/api/rules?dry_run=true", { method: "POST", body: ruleBody() });
    const d = $("dry-result");
    if (r.status === 200) {
      d.hidden = false;
      d.textContent = "would have matched " + r.body.would_match + " of the last " + r.body.of + " messages";
    } else { d.hidden = true; showError(r.body.error, r.body.column); }
  }

  async function addRule(ev) {
    ev.preventDefault();
    clearError();
    $("dry-result").hidden = true;
    const r = await api("/api/rules", { method: "POST", body: ruleBody() });
    if (r.status === 201) {
      state.pinned.add(r.body.id);
      localStorage.setItem("st-pinned", JSON.stringify([...state.pinned]));
      $("rule-value").value = ""; $("rule-id").value = ""; $("rule-tag").value = "";
      await loadRules();
    } else showError(r.body.error, r.body.column);
  }

  // ---- charts -------------------------------------------------------------------------
  function card(rule) {
    let c = state.cards.get(rule.id);
    if (c) return c;
    const root = el("div", "card");
    if (rule.id.startsWith(TAG)) root.dataset.tag = rule.id.slice(TAG.length); else root.dataset.rule = rule.id;
    const head = el("div", "head");
    const name = el("span", "name", rule.name || rule.id);
    const value = el("span", "value", rule.value);
    value.title = rule.value;
    const rate = el("span", "rate", "");
    const pin = el("button", "pin", "★");
    pin.title = "pin";
    pin.onclick = () => togglePin(rule.id);
    head.append(name, value, rate, pin);
    const vol = el("canvas", "volume"); vol.height = 110; vol.dataset.points = "0";
    const rea = el("canvas", "reaction"); rea.height = 44;
    const min = el("canvas", "minutes"); min.height = 60;
    root.append(head, el("div", "label", "matches per second, last 2 minutes (bursts marked)"), vol,
      el("div", "label", "reactions: positive share up, negative share down"), rea,
      el("div", "label", "matches per minute, last hour"), min);
    vol.onclick = (e) => pick(rule.id, vol, e, 1000);
    rea.onclick = (e) => pick(rule.id, vol, e, 1000);
    min.onclick = (e) => pick(rule.id, min, e, 60000);
    c = { root, vol, rea, min, rate };
    state.cards.set(rule.id, c);
    return c;
  }

  function layoutCards() {
    const shown = shownRules();
    const keep = new Set(shown.map((r) => r.id));
    for (const [id, c] of state.cards) if (!keep.has(id)) { c.root.remove(); state.cards.delete(id); }
    const box = $("charts");
    for (const r of shown) {
      const c = card(r);
      c.root.classList.toggle("pinned", state.pinned.has(r.id));
      c.rate.textContent = (r.rate || 0).toFixed(1) + "/s";
      box.append(c.root); // keeps the order of `shown`
    }
    for (const r of shown) if (!state.series.has(r.id)) state.dirty.add(r.id);
    scheduleRefresh(0);
  }

  function scheduleRefresh(ms) {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(async () => {
      state.refreshTimer = null;
      const ids = [...state.dirty].filter((id) => state.cards.has(id));
      state.dirty.clear();
      await Promise.all(ids.map(refreshSeries));
    }, ms);
  }

  async function refreshSeries(id) {
    const r = await api("/api/series?" + sel(id) + "&resolution=1s");
    if (r.status !== 200) return;
    state.series.set(id, r.body);
    draw(id);
    const c = state.cards.get(id);
    // The rate at the view's clock (the current second counted for the part elapsed).
    if (c && typeof r.body.rate === "number") c.rate.textContent = r.body.rate.toFixed(1) + "/s";
    if (c && Date.now() - (c.minutesAt || 0) > 2000) { c.minutesAt = Date.now(); refreshMinutes(id); }
  }
  async function refreshMinutes(id) {
    // The window ends at the view's clock (a replay's own time, not this browser's).
    const r = await api("/api/series?" + sel(id) + "&resolution=1m");
    if (r.status !== 200) return;
    const b = r.body.buckets;
    r.body.buckets = b.slice(Math.max(0, b.length - 60));
    state.minutes.set(id, r.body);
    draw(id);
  }

  function prep(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400;
    if (!canvas.dataset.h) canvas.dataset.h = String(canvas.height);
    const H = +canvas.dataset.h;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.height = H + "px";
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, H);
    return { g, w, h: H };
  }

  function bars(canvas, buckets, opts) {
    const { g, w, h } = prep(canvas);
    const top = 16, bottom = 14, left = 28;
    const n = Math.max(buckets.length, 1);
    const bw = (w - left) / n;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    g.fillStyle = "#8b97a3"; g.font = "10px system-ui";
    g.fillText(String(max), 2, top + 8); g.fillText("0", 2, h - bottom);
    g.strokeStyle = "#2a333d"; g.beginPath(); g.moveTo(left, h - bottom + 0.5); g.lineTo(w, h - bottom + 0.5); g.stroke();
    // One score label per burst the detector declared (a run of marked buckets), at its
    // highest-scoring bucket.
    const labelAt = new Set();
    for (let i = 0; i < buckets.length; i++) {
      if (!buckets[i].burst) continue;
      let best = i;
      while (i + 1 < buckets.length && buckets[i + 1].burst) {
        i++;
        if (buckets[i].burst_score > buckets[best].burst_score) best = i;
      }
      labelAt.add(best);
    }
    let points = 0, lastX = null;
    buckets.forEach((b, i) => {
      const x = left + i * bw;
      if (i % opts.tickEvery === 0) { g.fillStyle = "#8b97a3"; g.fillText(opts.fmt(b.t), x, h - 2); }
      if (!b.count) return;
      points++;
      const bh = (h - top - bottom) * b.count / max;
      const burst = !!b.burst;
      g.fillStyle = burst ? "#ffb020" : "#4aa3ff";
      g.fillRect(x + 0.5, h - bottom - bh, Math.max(1, bw - 1), bh);
      lastX = x + bw / 2;
      if (labelAt.has(i)) {
        const y = h - bottom - bh - 3;
        g.beginPath();
        g.moveTo(x + bw / 2, y); g.lineTo(x + bw / 2 - 4, y - 6); g.lineTo(x + bw / 2 + 4, y - 6); g.fill();
        if (opts.labels) g.fillText("burst " + b.burst_score.toFixed(2), Math.max(left, Math.min(x - 20, w - 60)), Math.max(9, y - 8));
      }
    });
    canvas.dataset.points = String(points);
    canvas.dataset.lastX = lastX === null ? "" : String(Math.round(lastX));
    canvas.dataset.bucketMs = String(opts.bucketMs);
    canvas._buckets = buckets; canvas._geom = { left, bw };
  }

  function reactions(canvas, buckets) {
    const { g, w, h } = prep(canvas);
    const left = 28, mid = h / 2;
    const n = Math.max(buckets.length, 1), bw = (w - left) / n;
    g.strokeStyle = "#2a333d"; g.beginPath(); g.moveTo(left, mid + 0.5); g.lineTo(w, mid + 0.5); g.stroke();
    g.fillStyle = "#8b97a3"; g.font = "10px system-ui"; g.fillText("+", 4, 12); g.fillText("−", 4, h - 4);
    let pos = 0, neg = 0, cnt = 0;
    buckets.forEach((b, i) => {
      if (!b.count) return;
      const x = left + i * bw;
      pos += b.positive; neg += b.negative; cnt += b.count;
      g.fillStyle = "#3fbf7f"; g.fillRect(x + 0.5, mid - (mid - 2) * b.positive / b.count, Math.max(1, bw - 1), (mid - 2) * b.positive / b.count);
      g.fillStyle = "#ef5b5b"; g.fillRect(x + 0.5, mid + 1, Math.max(1, bw - 1), (mid - 2) * b.negative / b.count);
    });
    canvas.dataset.balance = cnt ? ((pos - neg) / cnt).toFixed(2) : "";
  }

  function draw(id) {
    const c = state.cards.get(id);
    if (!c) return;
    const s = state.series.get(id);
    if (s) {
      bars(c.vol, s.buckets, { tickEvery: 30, fmt: hms, labels: true, bucketMs: 1000 });
      reactions(c.rea, s.buckets);
      const last = s.buckets.slice(-5);
      c.root.classList.toggle("bursting", last.some((b) => b.burst));
    }
    const m = state.minutes.get(id);
    if (m) bars(c.min, m.buckets, { tickEvery: 15, fmt: hm, labels: false, bucketMs: 60000 });
  }

  async function pick(id, canvas, ev, bucketMs) {
    const b = canvas._buckets, gm = canvas._geom;
    if (!b || !gm) return;
    const rect = canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientX - rect.left - gm.left) / gm.bw);
    if (i < 0 || i >= b.length) return;
    const t = b[i].t;
    await showMessages(id, t, t + bucketMs - 1);
  }

  async function showMessages(id, from, to) {
    const r = await api("/api/messages?" + sel(id) + "&from=" + from + "&to=" + to + "&limit=100");
    const ul = $("messages");
    ul.replaceChildren();
    $("messages-hint").hidden = true;
    $("messages-title").textContent = "Messages · " + (id.startsWith(TAG) ? "#" + id.slice(TAG.length) : id) + " · " + hms(from) + (to - from > 1000 ? "–" + hms(to) : "");
    if (r.status !== 200) { ul.append(el("li", "error", r.body && r.body.error)); return; }
    if (!r.body.messages.length) ul.append(el("li", "hint", "no message of this bucket is kept any more (the view keeps the last 1,000 per rule)"));
    for (const m of r.body.messages) ul.append(messageItem(m));
  }

  function messageItem(m) {
    const li = el("li");
    li.dataset.id = m.id;
    const meta = el("div", "meta");
    meta.append(el("span", "", hms(m.t)));
    if (m.user) meta.append(el("span", "user", "@" + m.user));
    if (m.reaction) meta.append(el("span", m.reaction.label === "positive" ? "pos" : m.reaction.label === "negative" ? "neg" : "", m.reaction.label + " " + m.reaction.compound));
    if (m.url && /^https?:\/\//i.test(m.url)) {
      const a = el("a", "", "link");
      a.href = m.url; a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
      meta.append(a);
    }
    const text = el("div", "text");
    text.dir = "auto";
    const cps = Array.from(m.text);
    let at = 0;
    for (const [s, e] of m.spans || []) {
      if (s < at || e > cps.length) continue;
      if (s > at) text.append(document.createTextNode(cps.slice(at, s).join("")));
      text.append(el("mark", "", cps.slice(s, e).join("")));
      at = e;
    }
    if (at < cps.length) text.append(document.createTextNode(cps.slice(at).join("")));
    li.append(meta, text);
    return li;
  }

  // ---- live updates ---------------------------------------------------------------------
  function connect() {
    const es = new EventSource("/events" + (token ? "?token=" + q(token) : ""));
    const st = $("status");
    es.addEventListener("hello", () => showConnected());
    es.addEventListener("heartbeat", () => showConnected());
    es.addEventListener("tick", (e) => {
      const d = JSON.parse(e.data);
      let unseen = false;
      for (const id of Object.keys(d.counts)) {
        const k = keyOfRule(id);
        if (k && state.cards.has(k)) state.dirty.add(k); else if (k) unseen = true;
      }
      scheduleRefresh(50);
      if (unseen && Date.now() - (state.lastRules || 0) > 2000) { state.lastRules = Date.now(); loadRules(); }
    });
    es.addEventListener("burst", (e) => {
      const d = JSON.parse(e.data);
      if (d.kind === "start") $("burst-list").prepend(burstItem(d));
      const k = keyOfRule(d.rule);
      if (k) state.dirty.add(k);
      scheduleRefresh(50);
    });
    es.addEventListener("rules", () => loadRules());
    es.addEventListener("gap", (e) => {
      const d = JSON.parse(e.data);
      const g = $("gap");
      g.hidden = false;
      g.textContent = "This page fell behind and missed " + (d.missed === null ? "some" : d.missed) + " live updates; the figures were refetched.";
      setTimeout(() => { g.hidden = true; }, 8000);
      refreshAll();
    });
    es.onerror = () => { st.dataset.state = "reconnecting"; st.textContent = "reconnecting…"; };
  }

  // Connected: "live" while the input flows, "input ended" (not green) once it is read, so
  // a finished replay does not pass for a live stream.
  function showConnected() {
    const st = $("status");
    st.dataset.state = state.inputEnded ? "ended" : "live";
    st.textContent = state.inputEnded ? "connected · input ended" : "live";
  }

  // The bursts that started before this page was opened (or while it missed updates).
  const burstItem = (d) => el("li", "", hms(d.t) + "  " + d.rule + "  burst (" + d.resolution + "), score " + d.score);
  async function loadBursts() {
    const r = await api("/api/bursts");
    if (r.status !== 200) return;
    $("burst-list").replaceChildren(...r.body.bursts.map(burstItem));
  }

  async function refreshAll() {
    loadBursts();
    await loadRules();
    for (const id of state.cards.keys()) { state.dirty.add(id); refreshMinutes(id); }
    scheduleRefresh(0);
  }

  async function figures() {
    const r = await api("/api/status");
    if (r.status !== 200) return;
    const s = r.body;
    const n = (k, one, many) => k.toLocaleString() + " " + (k === 1 ? one : many);
    // `deliveries` counts a message once per rule it matched, so it can exceed the messages
    // in: the page says "rule matches", not "matched".
    // The clock is the stream's: once the input ended (or for a replay) it stays on the
    // latest event time, and says so.
    const when = s.input_ended ? " (input ended)" : s.clock_follows === "events" ? " (stream time)" : "";
    $("figures").textContent = hms(s.clock) + when + " · " + n(s.messages_in, "message", "messages") + " in · " +
      n(s.deliveries, "rule match", "rule matches") + " · " + n(s.rules, "rule", "rules") + " · " + n(s.burst_starts, "burst", "bursts");
    $("figures").dataset.ended = s.input_ended ? "1" : "";
    if (!!s.input_ended !== !!state.inputEnded) {
      state.inputEnded = !!s.input_ended;
      if ($("status").dataset.state !== "reconnecting" && $("status").dataset.state !== "connecting") showConnected();
    }
    $("figures").dataset.clock = String(s.clock);
  }

  $("rule-form").addEventListener("submit", addRule);
  $("dry-run").addEventListener("click", dryRun);
  $("rule-value").addEventListener("input", () => { clearError(); $("dry-result").hidden = true; });
  $("sort").addEventListener("change", loadRules);
  $("top-n").addEventListener("change", layoutCards);
  $("group").addEventListener("change", () => {
    for (const c of state.cards.values()) c.root.remove();
    state.cards.clear(); state.series.clear(); state.minutes.clear();
    layoutCards();
    for (const id of state.cards.keys()) refreshMinutes(id);
  });
  window.addEventListener("resize", () => { for (const id of state.cards.keys()) draw(id); });
  setInterval(() => { for (const id of state.cards.keys()) state.dirty.add(id); scheduleRefresh(0); figures(); }, 1000);
  setInterval(() => { for (const id of state.cards.keys()) refreshMinutes(id); }, 10000);
  setInterval(loadRules, 5000);
  loadRules().then(() => { for (const id of state.cards.keys()) refreshMinutes(id); });
  figures();
  loadBursts();
  connect();
})();
