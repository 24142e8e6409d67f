// The compose form's live audience estimate: the form is posted to the estimate view (the API's
// targeting) a moment after each change. A static file: the dashboard's CSP allows no inline script.
(function () {
  const form = document.getElementById("compose-form");
  const out = document.getElementById("audience-estimate");
  let timer;
  async function update() {
    const response = await fetch(out.dataset.url, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    const result = await response.json();
    out.textContent = result.error ? ("cannot estimate: " + result.error) : (result.recipients + " subscribed players");
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 400); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(update, 100); });
  update();
})();
