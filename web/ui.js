// atc's web UI: what every page shares. Actions call the public REST API
// with the session cookie and the CSRF token the page carries.
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content;

async function callApi(method, url, body) {
  const headers = {};
  if (csrfToken) headers["X-Csrf-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try { message = JSON.parse(text).errors?.join(", ") || text; } catch (_) { /* plain text */ }
    throw new Error(`${method} ${url}: ${response.status} ${message}`);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : null;
}

function showError(error) {
  let box = document.getElementById("action-error");
  if (!box) {
    box = document.createElement("p");
    box.id = "action-error";
    box.className = "error";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = error.message;
}

// A button's action runs once at a time; the page reloads to show its result.
async function act(button, run) {
  button.disabled = true;
  try {
    await run();
  } catch (error) {
    showError(error);
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.put) {
    act(button, async () => { await callApi("PUT", button.dataset.put); location.reload(); });
  } else if (button.dataset.post) {
    // Trigger and rerun answer with the new build: open its page
    // (data-go is its URL with {build} for the build's name).
    act(button, async () => {
      const build = await callApi("POST", button.dataset.post);
      location.assign(button.dataset.go.replace("{build}", encodeURIComponent(build.name)));
    });
  } else if (button.id === "logout") {
    act(button, async () => {
      await fetch("/sky/logout", { method: "POST" });
      location.assign("/");
    });
  }
});

// Forms that save one text field as JSON (build and pin comments).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.putJson) return;
  event.preventDefault();
  const button = form.querySelector("button");
  const body = Object.fromEntries(new FormData(form).entries());
  act(button, async () => {
    await callApi("PUT", form.dataset.putJson, body);
    button.textContent = "Saved";
    button.disabled = false;
  });
});

// The login returns with ?csrf_token=; the page carries it already.
if (new URLSearchParams(location.search).has("csrf_token")) {
  const url = new URL(location.href);
  url.searchParams.delete("csrf_token");
  history.replaceState(null, "", url);
}

// Dashboard: the search box and live statuses.
const search = document.getElementById("search");
if (search) {
  const tiles = () => [...document.querySelectorAll(".tile")];
  const filter = () => {
    const terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const tile of tiles()) {
      const statuses = tile.dataset.statuses.split(" ");
      const match = terms.every((term) => {
        if (term.startsWith("team:")) return tile.dataset.team.toLowerCase() === term.slice(5);
        if (term.startsWith("status:")) return statuses.includes(term.slice(7));
        return tile.dataset.name.toLowerCase().includes(term);
      });
      tile.hidden = !match;
      if (match) shown++;
    }
    for (const team of document.querySelectorAll("section.team")) {
      team.hidden = !team.querySelector(".tile:not([hidden])");
    }
    document.getElementById("no-match").hidden = shown > 0 || tiles().length === 0;
  };
  search.value = new URLSearchParams(location.search).get("search") || "";
  search.addEventListener("input", filter);
  filter();

  const worst = ["failed", "errored", "aborted", "succeeded"];
  const refresh = async () => {
    const [jobs, pipelines] = await Promise.all([fetch("/api/v1/jobs"), fetch("/api/v1/pipelines")]
      .map((request) => request.then((r) => (r.ok ? r.json() : []))));
    const byId = new Map(pipelines.map((p) => [String(p.id), p]));
    for (const job of jobs) {
      const cell = document.querySelector(`.job-cell[data-job-id="${job.id}"]`);
      if (!cell) continue;
      const status = job.paused ? "paused" : job.finished_build?.status || "pending";
      const running = job.next_build?.status === "started";
      cell.className = `job-cell status-${status}${running ? " running" : ""}`;
      cell.title = `${job.name}: ${status}`;
      cell.querySelector(".job-status").textContent = status;
    }
    for (const tile of tiles()) {
      const cells = [...tile.querySelectorAll(".job-cell")];
      const statuses = cells.map((c) => (c.classList.contains("running") ? "running" : c.className.match(/status-(\w+)/)[1]));
      const pipeline = byId.get(tile.dataset.pipelineId);
      const own = pipeline?.paused ? "paused"
        : worst.find((s) => cells.some((c) => c.classList.contains(`status-${s}`))) || "pending";
      tile.className = `tile status-${own}`;
      tile.querySelector(".state").textContent = own + (pipeline?.public ? " · public" : "");
      tile.dataset.statuses = [...statuses, own].join(" ");
    }
    filter();
  };
  setInterval(() => refresh().catch(() => {}), 4000);
}
