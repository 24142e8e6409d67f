// The notification page's live progress: polls the progress view until the notification is done,
// redrawing the bar, the counts, the per-platform table and the conversions. A static file: the
// dashboard's CSP allows no inline script.
(function () {
  const panel = document.getElementById("herald-progress-panel");
  const bar = document.getElementById("herald-progress-bar");
  const text = document.getElementById("herald-progress-text");
  const platforms = document.querySelector("#herald-platforms tbody");
  async function refresh() {
    const response = await fetch(panel.dataset.url, {credentials: "same-origin"});
    if (!response.ok) return;
    const p = await response.json();
    const percent = p.recipients ? Math.round(100 * p.done / p.recipients) : 100;
    bar.style.width = percent + "%";
    text.textContent = `${p.status}: ${p.done} done (${p.successful} delivered, ${p.failed} failed, ` +
      `${p.errored} errored), ${p.remaining} remaining of ${p.recipients}; ${p.converted} clicked`;
    const rows = Object.entries(p.platforms).map(([platform, s]) => {
      const row = document.createElement("tr");
      for (const value of [platform, s.successful, s.failed, s.errored, s.converted]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      }
      return row;
    });
    if (rows.length) platforms.replaceChildren(...rows);
    document.getElementById("herald-conversions").textContent = `${p.converted} clicked of ${p.successful} delivered.`;
    const cancel = document.getElementById("herald-cancel");
    if (p.completed && cancel) cancel.remove();  // nothing left to cancel
    if (!p.completed) setTimeout(refresh, 2000);
  }
  refresh();
})();
