// The review page's script: the queue follows the server's events and
// fetches the table again (HTML the server escaped); a decision is sent as
// JSON. It sets text with textContent only.
"use strict";

function followQueue() {
  const live = document.getElementById("live");
  const queue = document.getElementById("queue");
  const events = new EventSource("/events");
  let fetching = false, again = false;
  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const r = await fetch("/queue", { cache: "no-store" });
      if (r.ok) { queue.innerHTML = await r.text(); }
    } finally {
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  }
  events.addEventListener("queue", (e) => {
    const n = JSON.parse(e.data).waiting;
    live.textContent = "live: " + n + " waiting";
    refresh();
  });
  events.onerror = () => { live.textContent = "reconnecting…"; };
}

function decideForm() {
  const form = document.getElementById("decide");
  if (!form) { return; }
  const result = document.getElementById("result");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const decision = e.submitter ? e.submitter.value : "";
    const note = document.getElementById("note").value;
    for (const b of form.querySelectorAll("button")) { b.disabled = true; }
    result.className = "";
    result.textContent = "sending…";
    try {
      const r = await fetch("/review/" + encodeURIComponent(form.dataset.id) + "/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision: decision, note: note }),
      });
      const body = await r.json();
      if (r.ok) {
        result.className = "ok";
        result.textContent = body.decision + " by " + body.reviewer + " at " + body.decided_at + ": " + body.note;
        form.remove();
        return;
      }
      result.className = "error";
      result.textContent = body.error || ("error " + r.status);
      if (r.status === 409) { form.remove(); return; }
    } catch (err) {
      result.className = "error";
      result.textContent = "not sent: " + err;
    }
    for (const b of form.querySelectorAll("button")) { b.disabled = false; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "queue") { followQueue(); }
  decideForm();
});
