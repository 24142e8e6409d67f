// The dashboard's filter builder: rows for the API's filter language (fields and relations come
// from segments.filters.RELATIONS through #herald-relations), written into the "filters" textarea.
// Used by the segment form (with a live count) and the compose form (whose estimate re-runs).
(function () {
  const relations = JSON.parse(document.getElementById("herald-relations").textContent);
  const textarea = document.getElementById("id_filters");
  const appInput = document.getElementById("id_app");
  const builder = document.getElementById("herald-builder");
  const count = document.getElementById("herald-count");  // absent on the compose form
  if (!builder || !textarea) return;
  const keyed = new Set(["tag", "bought_sku"]);
  let rows = [];
  try { rows = JSON.parse(textarea.value || "[]"); } catch (e) { rows = []; }
  if (!Array.isArray(rows)) rows = [];

  function input(value, placeholder, onChange) {
    const el = document.createElement("input");
    el.value = value ?? ""; el.placeholder = placeholder; el.size = 12;
    el.addEventListener("input", () => { onChange(el.value); sync(); });
    return el;
  }
  function select(options, value, onChange) {
    const el = document.createElement("select");
    for (const option of options) { const o = document.createElement("option"); o.value = o.textContent = option; el.appendChild(o); }
    el.value = value; el.addEventListener("change", () => { onChange(el.value); render(); sync(); });
    return el;
  }
  function render() {
    builder.replaceChildren();
    rows.forEach((row, index) => {
      const line = document.createElement("div");
      line.className = "form-row";
      if (row.operator) {
        line.textContent = "OR ";
      } else {
        line.appendChild(select(Object.keys(relations), row.field, v => { rows[index] = {field: v, relation: (relations[v][0] || undefined)}; }));
        if (keyed.has(row.field)) line.appendChild(input(row.key, "key", v => row.key = v));
        if (row.field === "location") {
          for (const name of ["radius", "lat", "long"]) line.appendChild(input(row[name], name, v => row[name] = v));
        } else {
          line.appendChild(select(relations[row.field] || [], row.relation, v => row.relation = v));
          if (!["exists", "not_exists"].includes(row.relation)) line.appendChild(input(row.value, "value", v => row.value = v));
        }
      }
      const remove = document.createElement("button");
      remove.type = "button"; remove.textContent = "Remove";
      remove.addEventListener("click", () => { rows.splice(index, 1); render(); sync(); });
      line.appendChild(remove);
      builder.appendChild(line);
    });
  }
  let timer;
  function sync() {
    textarea.value = JSON.stringify(rows);
    textarea.dispatchEvent(new Event("input", {bubbles: true}));  // the compose form re-estimates
    clearTimeout(timer); timer = setTimeout(refreshCount, 300);
  }
  async function refreshCount() {
    if (!count) return;
    const body = new FormData();
    body.append("app", appInput ? appInput.value : "");
    body.append("filters", textarea.value);
    body.append("csrfmiddlewaretoken", document.querySelector("[name=csrfmiddlewaretoken]").value);
    const response = await fetch(count.dataset.url, {method: "POST", body, credentials: "same-origin"});
    const result = await response.json();
    count.textContent = result.error ? ("– " + result.error) : result.subscribers;
  }
  document.getElementById("herald-add-filter").addEventListener("click", () => { rows.push({field: "tag", relation: "=", key: "", value: ""}); render(); sync(); });
  document.getElementById("herald-add-or").addEventListener("click", () => { rows.push({operator: "OR"}); render(); sync(); });
  textarea.addEventListener("change", () => { try { rows = JSON.parse(textarea.value); render(); } catch (e) {} refreshCount(); });
  if (appInput) appInput.addEventListener("change", refreshCount);
  render(); refreshCount();
})();
