// One node's shell in the clusterkit console: its output, a prompt and an input line.
//
// This is an anywidget front end (an ES module). Standard ipywidgets cannot see the
// arrow keys, so the input line lives here: Enter sends the line to Python (which runs
// it on the node through the lab), ArrowUp / ArrowDown walk the history, Ctrl+C (with
// nothing selected) interrupts the node's kernel. The history itself is kept by Python
// (the `history` trait) so it survives a re-render; the line typed before browsing is
// kept as a draft and comes back after the newest entry.

function render({ model, el }) {
  el.classList.add("ck-shell");

  const out = document.createElement("div");
  out.className = "ck-shell-out";
  const row = document.createElement("div");
  row.className = "ck-shell-row";
  const prompt = document.createElement("span");
  prompt.className = "ck-shell-prompt";
  const input = document.createElement("input");
  input.className = "ck-shell-input";
  input.type = "text";
  input.spellcheck = false;
  input.autocomplete = "off";
  input.setAttribute("autocapitalize", "off");
  row.append(prompt, input);
  const hint = document.createElement("div");
  hint.className = "ck-shell-hint";
  el.append(out, row, hint);

  let history = [...(model.get("history") || [])];
  let index = history.length; // history.length stands for the line being typed
  let draft = "";
  let refocus = false;

  function drawEntries() {
    const entries = model.get("entries") || [];
    out.replaceChildren(
      ...entries.map(([kind, text]) => {
        const line = document.createElement("div");
        line.className = "ck-out ck-out-" + kind;
        line.textContent = text;
        return line;
      }),
    );
    out.scrollTop = out.scrollHeight;
  }

  function drawState() {
    const enabled = model.get("enabled");
    const busy = model.get("busy");
    prompt.textContent = model.get("prompt");
    input.disabled = !enabled;
    input.placeholder = model.get("placeholder");
    hint.textContent = model.get("hint");
    el.classList.toggle("ck-busy", busy);
    el.classList.toggle("ck-off", !enabled);
    if (enabled && !busy && refocus) {
      refocus = false;
      input.focus();
    }
  }

  function syncHistory() {
    history = [...(model.get("history") || [])];
    index = history.length;
    draft = "";
  }

  function browse(step) {
    const next = index + step;
    if (next < 0 || next > history.length) return;
    if (index === history.length) draft = input.value;
    index = next;
    input.value = index === history.length ? draft : history[index];
    const end = input.value.length;
    input.setSelectionRange(end, end);
  }

  input.addEventListener("keydown", (event) => {
    // Keys typed here belong to the shell, not to JupyterLab's notebook shortcuts.
    event.stopPropagation();
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      const code = input.value;
      if (!code.trim() || model.get("busy")) return;
      if (history[history.length - 1] !== code) history.push(code);
      index = history.length;
      draft = "";
      input.value = "";
      refocus = true;
      model.send({ type: "submit", code });
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      browse(-1);
    } else if (event.key === "ArrowDown") {
      event.preventDefault();
      browse(1);
    } else if (event.key === "c" && event.ctrlKey &&
               input.selectionStart === input.selectionEnd) {
      event.preventDefault();
      model.send({ type: "interrupt" });
    }
  });

  // As in a terminal: a click on the shell (that selects no text) puts you on the input.
  out.addEventListener("mouseup", () => {
    if (!window.getSelection().toString() && !input.disabled) input.focus();
  });

  model.on("change:entries", drawEntries);
  model.on("change:history", syncHistory);
  for (const name of ["prompt", "enabled", "busy", "placeholder", "hint"]) {
    model.on("change:" + name, drawState);
  }
  drawEntries();
  drawState();

  return () => {
    model.off("change:entries", drawEntries);
    model.off("change:history", syncHistory);
    for (const name of ["prompt", "enabled", "busy", "placeholder", "hint"]) {
      model.off("change:" + name, drawState);
    }
  };
}

export default { render };
