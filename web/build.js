// A build's live view: its events (GET /api/v1/builds/:id/events) fill in
// step states, logs and the timeline. Logs are kept as arrays of lines and
// drawn in chunks only when near the visible part of the log, so a
// 100,000-line log costs a few hundred DOM nodes, not 100,000.
"use strict";

const LINE_HEIGHT = 18; // px, as .line in ui.css
const CHUNK = 200; // lines per chunk

const ANSI_COLOURS = ["#555", "#ed4b35", "#11c560", "#f5a623", "#4a90e2", "#c678dd", "#56b6c2", "#ddd"];
const BRIGHT = ["#888", "#ff7b6b", "#4be38a", "#ffd166", "#7bb5ff", "#e29dfa", "#8be9fd", "#fff"];

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// A line with ANSI SGR colours as spans; other escape sequences dropped.
function ansiToHtml(line) {
  if (!line.includes("\x1b")) return escapeHtml(line);
  let html = "", colour = null, bold = false;
  const parts = line.split(/\x1b\[([0-9;]*)([A-Za-z])/);
  for (let i = 0; i < parts.length; i += 3) {
    const text = parts[i];
    if (text) {
      const style = colour ? ` style="color:${colour}"` : "";
      html += colour || bold ? `<span${bold ? ' class="ansi-bold"' : ""}${style}>${escapeHtml(text)}</span>` : escapeHtml(text);
    }
    if (i + 2 < parts.length && parts[i + 2] === "m") {
      for (const code of (parts[i + 1] || "0").split(";").map(Number)) {
        if (code === 0) { colour = null; bold = false; }
        else if (code === 1) bold = true;
        else if (code === 22) bold = false;
        else if (code >= 30 && code <= 37) colour = ANSI_COLOURS[code - 30];
        else if (code >= 90 && code <= 97) colour = BRIGHT[code - 90];
        else if (code === 39) colour = null;
      }
    }
  }
  return html;
}

// As the server writes durations (layout::duration).
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function clock(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

class LogView {
  constructor(element) {
    this.element = element;
    this.lines = [];
    this.times = [];
    this.partial = null;
    this.partialTime = 0;
    this.chunks = [];
    this.follow = true;
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), {
      root: element,
      rootMargin: "600px 0px",
    });
    element.addEventListener("scroll", () => {
      this.follow = element.scrollTop + element.clientHeight >= element.scrollHeight - LINE_HEIGHT * 2;
    });
  }

  append(payload, time) {
    const pieces = payload.split("\n");
    if (this.partial !== null) {
      pieces[0] = this.partial + pieces[0];
      this.partial = null;
    }
    const last = pieces.pop();
    for (const piece of pieces) {
      this.lines.push(piece.replace(/\r$/, ""));
      this.times.push(time);
    }
    if (last !== "") {
      this.partial = last;
      this.partialTime = time;
    }
  }

  appendError(message) {
    const box = document.createElement("div");
    box.className = "log-error";
    box.textContent = message;
    this.element.after(box);
  }

  count() {
    return this.lines.length + (this.partial !== null ? 1 : 0);
  }

  line(i) {
    return i < this.lines.length ? [this.lines[i], this.times[i]] : [this.partial, this.partialTime];
  }

  fill(index) {
    const chunk = this.chunks[index];
    const end = Math.min(this.count(), (index + 1) * CHUNK);
    let html = "";
    for (let i = index * CHUNK; i < end; i++) {
      const [text, time] = this.line(i);
      html += `<div class="line" data-n="${i + 1}"><span class="ts">${time ? clock(time) : ""}</span>${ansiToHtml(text)}</div>`;
    }
    chunk.innerHTML = html;
    chunk.dataset.filled = String(end - index * CHUNK);
  }

  onVisible(entries) {
    for (const entry of entries) {
      const index = Number(entry.target.dataset.index);
      if (entry.isIntersecting) {
        this.fill(index);
      } else if (entry.target.dataset.filled) {
        entry.target.textContent = "";
        delete entry.target.dataset.filled;
      }
    }
  }

  // Brings the DOM up to the lines received: new chunks as sized
  // placeholders, visible ones drawn.
  render() {
    const total = this.count();
    const needed = Math.ceil(total / CHUNK);
    while (this.chunks.length < needed) {
      const chunk = document.createElement("div");
      chunk.className = "chunk";
      chunk.dataset.index = String(this.chunks.length);
      this.element.append(chunk);
      this.chunks.push(chunk);
      this.observer.observe(chunk);
    }
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i];
      const lines = Math.min(CHUNK, total - i * CHUNK);
      chunk.style.height = `${lines * LINE_HEIGHT}px`;
      if (chunk.dataset.filled && Number(chunk.dataset.filled) !== lines) this.fill(i);
    }
    this.element.dataset.lines = String(total);
    if (this.follow) this.element.scrollTop = this.element.scrollHeight;
  }
}

// The build's events, drawn into the page.
class BuildView {
  constructor(root, stepsElement) {
    this.root = root;
    this.stepsElement = stepsElement;
    this.logs = new Map();
    this.steps = new Map(); // origin id → {name, initialized, started, finished, state}
    this.dirty = new Set();
    this.frame = 0;
  }

  section(origin, name, container = this.stepsElement) {
    let section = this.stepsElement.querySelector(`.step[data-origin="${CSS.escape(origin)}"]`);
    if (!section) {
      section = document.createElement("section");
      section.className = "step";
      section.dataset.origin = origin;
      section.dataset.name = name || origin;
      section.innerHTML = `<button class="step-head" type="button" aria-expanded="true"><span class="step-kind"></span> <span class="step-name"></span><span class="step-state">pending</span></button><div class="log" role="log" tabindex="0"></div>`;
      section.querySelector(".step-name").textContent = name || `step ${origin}`;
      section.querySelector(".log").setAttribute("aria-label", `${name || origin} log`);
      container.append(section);
    }
    return section;
  }

  log(origin) {
    if (!this.logs.has(origin)) {
      this.logs.set(origin, new LogView(this.section(origin).querySelector(".log")));
    }
    return this.logs.get(origin);
  }

  step(origin) {
    if (!this.steps.has(origin)) {
      const section = this.section(origin);
      this.steps.set(origin, { name: section.dataset.name, state: "pending" });
    }
    return this.steps.get(origin);
  }

  setState(origin, state) {
    this.step(origin).state = state;
    const section = this.section(origin);
    section.dataset.state = state;
    section.querySelector(".step-state").textContent = state;
  }

  handle(event) {
    const data = event.data || {};
    const origin = data.origin?.id;
    const kind = event.event;
    if (origin && this.planMissing()) return;
    if (kind === "log" && origin) {
      this.log(origin).append(data.payload || "", data.time);
      this.dirty.add(origin);
    } else if (kind.startsWith("initialize") && origin) {
      this.step(origin).initialized = data.time;
      this.setState(origin, "initializing");
    } else if (kind.startsWith("start") && origin) {
      this.step(origin).started = data.time;
      this.setState(origin, "started");
    } else if (kind.startsWith("finish") && origin) {
      const step = this.step(origin);
      step.finished = data.time;
      const ok = "succeeded" in data ? data.succeeded : data.exit_status === 0;
      this.setState(origin, ok ? "succeeded" : "failed");
    } else if (kind === "error") {
      if (origin) {
        this.step(origin).finished ??= data.time;
        this.setState(origin, "errored");
        this.log(origin).appendError(data.message);
      } else {
        const box = document.getElementById("build-error");
        if (box) { box.hidden = false; box.textContent = data.message; }
      }
    } else if (kind === "status") {
      this.setStatus(data.status, data.time);
    } else if (kind === "across-substeps" && origin) {
      const group = this.stepsElement.querySelector(`.group[data-origin="${CSS.escape(origin)}"]`);
      for (const substep of data.substeps || []) this.addLeaves(substep, group || this.stepsElement);
    }
    this.schedule();
  }

  addLeaves(plan, container) {
    if (!plan || typeof plan !== "object") return;
    for (const kind of ["get", "put", "task", "check", "set_pipeline", "load_var"]) {
      if (plan[kind]) { this.section(plan.id, plan[kind].name, container); return; }
    }
    for (const value of Object.values(plan)) {
      if (Array.isArray(value)) value.forEach((v) => this.addLeaves(v, container));
      else if (value && typeof value === "object") this.addLeaves(value, container);
    }
  }

  // A page opened before its build had a plan has no tree of steps yet:
  // once steps report, it takes the tree from the page rendered afresh and
  // follows the events again from the start (`onPlan`).
  planMissing() {
    if (!document.getElementById("no-plan")) return false;
    if (!this.fetchingPlan) {
      this.fetchingPlan = true;
      fetch(location.href)
        .then((response) => response.text())
        .then((html) => {
          const steps = new DOMParser().parseFromString(html, "text/html").getElementById("steps");
          if (steps && !steps.querySelector("#no-plan")) {
            this.stepsElement.replaceChildren(...steps.childNodes);
            this.onPlan?.();
          } else {
            this.fetchingPlan = false;
          }
        })
        .catch(() => { this.fetchingPlan = false; });
    }
    return true;
  }

  setStatus(status, time) {
    if (!this.root) return;
    this.root.dataset.status = status;
    if (status === "started" && !Number(this.root.dataset.start) && time) this.root.dataset.start = String(time);
    const badge = document.querySelector("#build-status .badge");
    if (badge) { badge.className = `badge status-${status}`; badge.textContent = status; }
    if (!["pending", "started"].includes(status)) {
      document.getElementById("abort")?.remove();
      this.endTime = time;
      // Steps cut short (an abort) or without finish events (checks) end with the build.
      for (const [origin, step] of this.steps) {
        if (!step.finished && (step.initialized || step.started)) {
          step.finished = time;
          this.setState(origin, status === "succeeded" ? "succeeded" : status);
        }
      }
      const end = document.getElementById("build-end");
      if (end && time) end.textContent = new Date(time * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      const started = Number(this.root.dataset.start);
      const shown = document.getElementById("build-duration");
      if (started > 0 && time && shown) shown.textContent = duration(time - started);
    }
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    for (const origin of this.dirty) this.logs.get(origin)?.render();
    this.dirty.clear();
    this.renderTimeline();
  }

  renderTimeline() {
    const element = document.getElementById("timeline");
    if (!element) return;
    const steps = [...this.steps.entries()].filter(([, s]) => s.initialized || s.started);
    if (steps.length === 0) return;
    const first = Math.min(...steps.map(([, s]) => s.initialized || s.started));
    const now = this.endTime || Math.max(Date.now() / 1000, ...steps.map(([, s]) => s.finished || 0));
    const span = Math.max(1, now - first);
    const pct = (t) => `${(((t - first) / span) * 100).toFixed(2)}%`;
    element.innerHTML = "";
    for (const [origin, step] of steps) {
      const begin = step.initialized || step.started;
      const start = step.started || now;
      const finish = step.finished || now;
      const row = document.createElement("div");
      row.className = "tl-row";
      row.setAttribute("role", "listitem");
      row.dataset.origin = origin;
      const seconds = finish - begin;
      row.innerHTML = `<span class="tl-name"></span><span class="tl-track" aria-hidden="true"><span class="tl-init" style="left:${pct(begin)};width:calc(${pct(start)} - ${pct(begin)})"></span><span class="tl-bar status-${step.state === "started" ? "started" : step.state}" style="left:${pct(start)};width:calc(${pct(finish)} - ${pct(start)})"></span></span><span class="tl-time">${duration(seconds)}</span>`;
      row.querySelector(".tl-name").textContent = step.name;
      row.title = `${step.name}: ${step.state}, ${duration(seconds)}` + (step.started && step.initialized ? ` (${duration(step.started - step.initialized)} initializing)` : "");
      element.append(row);
    }
  }
}

// Streams build `id`'s events into `view` until the build ends.
function follow(id, view, onEnd) {
  const source = new EventSource(`/api/v1/builds/${id}/events`);
  source.addEventListener("event", (message) => {
    try { view.handle(JSON.parse(message.data)); } catch (error) { console.error(error); }
  });
  source.addEventListener("end", () => {
    source.close();
    view.render();
    onEnd?.();
  });
  source.onerror = () => {
    // The browser reconnects with Last-Event-ID; a refusal is final.
    if (source.readyState === EventSource.CLOSED) onEnd?.();
  };
  return source;
}

const buildRoot = document.getElementById("build");
if (buildRoot) {
  let view;
  const start = () => {
    view = new BuildView(buildRoot, document.getElementById("steps"));
    const events = follow(buildRoot.dataset.buildId, view, () => { buildRoot.dataset.ended = "true"; });
    view.onPlan = () => { events.close(); start(); };
  };
  start();
  // While the build runs, its duration and timeline grow.
  const tick = () => {
    const started = Number(buildRoot.dataset.start);
    const end = view.endTime || Date.now() / 1000;
    const shown = document.getElementById("build-duration");
    if (started > 0 && shown) shown.textContent = duration(end - started);
    if (!view.endTime) view.renderTimeline();
  };
  setInterval(tick, 1000);
  document.getElementById("show-times")?.addEventListener("change", (event) => {
    document.getElementById("steps").classList.toggle("show-times", event.target.checked);
  });
}

document.addEventListener("click", (event) => {
  const head = event.target.closest(".step-head");
  if (head) head.setAttribute("aria-expanded", head.getAttribute("aria-expanded") === "true" ? "false" : "true");
});

// Resource page: the last check's log, and "Check now" showing the new
// check's log as it runs.
let checkEvents;
function followCheck(id, onEnd) {
  checkEvents?.close();
  const log = document.getElementById("check-log");
  log.textContent = "";
  const status = document.getElementById("check-status");
  status.textContent = "";
  const view = {
    logView: new LogView(log),
    handle(event) {
      if (event.event === "log") this.logView.append(event.data.payload || "", event.data.time);
      if (event.event === "error") this.logView.appendError(event.data.message);
      if (event.event === "status") status.textContent = ` ${event.data.status}`;
      this.logView.render();
    },
    render() { this.logView.render(); },
  };
  checkEvents = follow(id, view, onEnd);
}

const checkOutput = document.getElementById("check-output");
if (checkOutput?.dataset.buildId) followCheck(checkOutput.dataset.buildId);

const checkButton = document.querySelector("button[data-check]");
if (checkButton) {
  checkButton.addEventListener("click", () => act(checkButton, async () => {
    const build = await callApi("POST", checkButton.dataset.check);
    checkOutput.hidden = false;
    followCheck(build.id, () => { checkButton.disabled = false; });
  }));
}
