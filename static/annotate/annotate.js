/* The annotator page, keyboard first: keys, span selection, undo, time spent.
 *
 * No framework. Text is only ever put in the page with textContent; the document's
 * exact text comes from a json_script block (the HTML parser would turn CRLF into LF
 * and shift offsets). Span offsets are stored in characters (code points), as Python
 * counts them; JavaScript strings count UTF-16 units, so offsets are converted.
 * htmx autosaves drafts on "change" and on the "annotate-changed" event sent here.
 */
(function () {
  "use strict";
  var root = document.getElementById("annotate");
  var form = document.getElementById("answer-form");
  if (!root || !form) return;
  var questions = Array.prototype.slice.call(form.querySelectorAll("fieldset.question"));
  var timeInput = document.getElementById("time-spent");
  var active = 0;

  /* Time spent: counted while the page is visible, on top of what earlier visits saved. */
  var spent = parseInt(root.dataset.timeSpent || "0", 10) || 0;
  var last = performance.now();
  function tick() {
    var now = performance.now();
    if (document.visibilityState === "visible") spent += now - last;
    last = now;
    timeInput.value = String(Math.round(spent));
  }
  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
  form.addEventListener("submit", tick);
  document.body.addEventListener("htmx:configRequest", function (e) {
    tick();
    e.detail.parameters["time_spent_ms"] = timeInput.value;
  });

  function changed() {
    form.dispatchEvent(new CustomEvent("annotate-changed", { bubbles: true }));
  }

  /* Undo: snapshots of every answer field; "u" restores the previous one. */
  function fields() {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrfmiddlewaretoken" && el.name !== "time_spent_ms";
    });
  }
  function snapshot() {
    return fields().map(function (el) {
      return el.type === "radio" || el.type === "checkbox" ? el.checked : el.value;
    });
  }
  var history = [];
  var current = snapshot();
  function record() {
    var now = snapshot();
    if (JSON.stringify(now) !== JSON.stringify(current)) {
      history.push(current);
      current = now;
    }
  }
  function undo() {
    if (!history.length) return;
    var state = history.pop();
    fields().forEach(function (el, i) {
      if (el.type === "radio" || el.type === "checkbox") el.checked = state[i];
      else el.value = state[i];
    });
    current = state;
    questions.forEach(loadSpans);
    renderText();
    questions.forEach(markAttribute);
    changed();
  }
  form.addEventListener("change", record);

  /* The active question: digits answer it; "[" and "]" move between questions. */
  function activate(i, focusText) {
    active = Math.max(0, Math.min(questions.length - 1, i));
    questions.forEach(function (q, j) {
      q.classList.toggle("active", j === active);
    });
    var q = questions[active];
    if (!q) return;
    q.scrollIntoView({ block: "nearest" });
    if (q.dataset.kind === "rewrite" && focusText) q.querySelector("textarea").focus();
    if (q.dataset.kind === "spans") renderText();
    markAttribute(q);
  }
  questions.forEach(function (q, i) {
    q.addEventListener("focusin", function () {
      if (active !== i) activate(i, false);
    });
    q.addEventListener("mousedown", function () {
      if (active !== i) activate(i, false);
    });
  });

  /* Ratings: one attribute at a time is highlighted; a digit rates it and moves on. */
  function rows(q) {
    return Array.prototype.slice.call(q.querySelectorAll("tr.attribute"));
  }
  function markAttribute(q) {
    if (q.dataset.kind !== "rating") return;
    var at = parseInt(q.dataset.attr || "0", 10);
    rows(q).forEach(function (row, j) {
      row.classList.toggle("current", j === at && q.classList.contains("active"));
    });
  }
  function rate(q, key) {
    var list = rows(q);
    var at = parseInt(q.dataset.attr || "0", 10);
    var row = list[at];
    if (!row) return;
    var input = row.querySelector('input[value="' + key + '"]');
    if (!input) return;
    input.click();
    if (at + 1 >= list.length) {
      q.dataset.attr = "0";
      activate(active + 1, true);
    } else {
      q.dataset.attr = String(at + 1);
      markAttribute(q);
    }
  }
  questions.forEach(function (q) {
    if (q.dataset.kind !== "rating") return;
    rows(q).forEach(function (row, j) {
      row.addEventListener("change", function () {
        q.dataset.attr = String(Math.min(j + 1, rows(q).length - 1));
        markAttribute(q);
      });
    });
  });

  /* Spans over the text. */
  var textEl = document.getElementById("doc-text");
  var data = document.getElementById("doc-text-data");
  var TEXT = data ? JSON.parse(data.textContent) : null;
  var astral = TEXT !== null && /[\uD800-\uDFFF]/.test(TEXT);
  var pending = null; // {s, e} in UTF-16 units
  var words = null;

  function isHigh(c) {
    return c >= 0xd800 && c <= 0xdbff;
  }
  function toCp(u) {
    if (!astral) return u;
    var cp = 0;
    for (var i = 0; i < u; i++) {
      if (isHigh(TEXT.charCodeAt(i)) && i + 1 < u) i++;
      cp++;
    }
    return cp;
  }
  function toUnit(cp) {
    if (!astral) return cp;
    var u = 0;
    for (var n = 0; n < cp && u < TEXT.length; n++) u += isHigh(TEXT.charCodeAt(u)) ? 2 : 1;
    return u;
  }
  function spanInput(q) {
    return q.querySelector("input.spans-input");
  }
  function labelsOf(q) {
    return Array.prototype.map.call(q.querySelectorAll("button.span-label"), function (b) {
      return b.dataset.label;
    });
  }
  function loadSpans(q) {
    if (q.dataset.kind !== "spans") return;
    try {
      q._spans = JSON.parse(spanInput(q).value || "[]");
    } catch (err) {
      q._spans = [];
    }
  }
  function spanQuestion() {
    var q = questions[active];
    if (q && q.dataset.kind === "spans") return q;
    for (var i = 0; i < questions.length; i++) {
      if (questions[i].dataset.kind === "spans") return questions[i];
    }
    return null;
  }
  function message(q, text) {
    var p = q.querySelector(".span-msg");
    if (!p) {
      p = document.createElement("p");
      p.className = "error span-msg";
      q.appendChild(p);
    }
    p.textContent = text;
  }
  function renderList(q) {
    var list = q.querySelector(".span-list");
    var labels = labelsOf(q);
    list.replaceChildren();
    q._spans.forEach(function (span, i) {
      var li = document.createElement("li");
      var tag = document.createElement("span");
      tag.className = "label-" + labels.indexOf(span.label);
      tag.textContent = span.label;
      var quote = TEXT.slice(toUnit(span.start), toUnit(span.end));
      if (quote.length > 80) quote = quote.slice(0, 80) + "…";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.title = "Remove this span";
      remove.addEventListener("click", function () {
        q._spans.splice(i, 1);
        saveSpans(q);
      });
      li.append(tag, " " + span.start + "–" + span.end + " “", quote, "” ", remove);
      list.appendChild(li);
    });
  }
  function renderText() {
    if (TEXT === null || !textEl) return;
    var q = spanQuestion();
    var labels = q ? labelsOf(q) : [];
    var marks = (q ? q._spans : []).map(function (s) {
      return { s: toUnit(s.start), e: toUnit(s.end), label: labels.indexOf(s.label) };
    });
    var cuts = [0, TEXT.length];
    marks.forEach(function (m) {
      cuts.push(m.s, m.e);
    });
    if (pending) cuts.push(pending.s, pending.e);
    cuts.sort(function (a, b) {
      return a - b;
    });
    var frag = document.createDocumentFragment();
    for (var k = 0; k + 1 < cuts.length; k++) {
      var a = cuts[k];
      var b = cuts[k + 1];
      if (a === b) continue;
      var seg = document.createElement("span");
      seg.className = "seg";
      seg.dataset.u = String(a);
      seg.textContent = TEXT.slice(a, b);
      var covering = marks.filter(function (m) {
        return m.s <= a && m.e >= b;
      });
      if (covering.length) {
        seg.classList.add("hl", "l" + covering[covering.length - 1].label);
        if (covering.length > 1) seg.classList.add("multi");
        seg.title = covering
          .map(function (m) {
            return labels[m.label];
          })
          .join(", ");
      }
      if (pending && pending.s <= a && pending.e >= b) seg.classList.add("pending");
      frag.appendChild(seg);
    }
    textEl.replaceChildren(frag);
    if (q) renderList(q);
  }
  function saveSpans(q) {
    spanInput(q).value = JSON.stringify(q._spans);
    record();
    changed();
    renderText();
  }
  function applyLabel(q, index) {
    var labels = labelsOf(q);
    if (!pending) {
      message(q, "Select some text first (mouse, or ←/→ and Shift+←/→).");
      return;
    }
    var span = { start: toCp(pending.s), end: toCp(pending.e), label: labels[index] };
    var overlap = spanInput(q).dataset.allowOverlap !== "1";
    var clash = q._spans.some(function (s) {
      var same = s.start === span.start && s.end === span.end && s.label === span.label;
      return same || (overlap && s.start < span.end && span.start < s.end);
    });
    if (clash) {
      message(q, "That span overlaps another one, which this question does not allow.");
      return;
    }
    message(q, "");
    q._spans.push(span);
    pending = null;
    saveSpans(q);
  }
  function offsetOf(node, offset) {
    if (node === textEl) {
      var child = textEl.childNodes[offset];
      return child && child.dataset ? parseInt(child.dataset.u, 10) : TEXT.length;
    }
    var el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    var seg = el && el.closest(".seg");
    if (!seg || !textEl.contains(seg)) return null;
    return parseInt(seg.dataset.u, 10) + (node.nodeType === Node.TEXT_NODE ? offset : 0);
  }
  function trimPending() {
    while (pending.s < pending.e && /\s/.test(TEXT[pending.s])) pending.s++;
    while (pending.e > pending.s && /\s/.test(TEXT[pending.e - 1])) pending.e--;
    if (pending.s === pending.e) pending = null;
  }
  function wordList() {
    if (words === null) {
      words = [];
      var re = /\S+/g;
      var m;
      while ((m = re.exec(TEXT)) !== null) words.push([m.index, m.index + m[0].length]);
    }
    return words;
  }
  function moveWord(direction, extend) {
    var list = wordList();
    if (!list.length) return;
    var i;
    if (!pending) {
      pending = { s: list[0][0], e: list[0][1] };
    } else if (direction > 0) {
      for (i = 0; i < list.length && list[i][0] < pending.e; i++);
      if (i < list.length) {
        if (extend) pending.e = list[i][1];
        else pending = { s: list[i][0], e: list[i][1] };
      }
    } else if (extend) {
      for (i = list.length - 1; i >= 0 && list[i][1] >= pending.e; i--);
      if (i >= 0 && list[i][1] > pending.s) pending.e = list[i][1];
    } else {
      for (i = list.length - 1; i >= 0 && list[i][1] > pending.s; i--);
      if (i >= 0) pending = { s: list[i][0], e: list[i][1] };
    }
    renderText();
    var mark = textEl.querySelector(".seg.pending");
    if (mark) mark.scrollIntoView({ block: "nearest" });
  }
  if (TEXT !== null && textEl) {
    questions.forEach(loadSpans);
    textEl.addEventListener("mouseup", function () {
      var sel = window.getSelection();
      if (!sel || sel.isCollapsed || !sel.rangeCount) return;
      var r = sel.getRangeAt(0);
      if (!textEl.contains(r.startContainer) || !textEl.contains(r.endContainer)) return;
      var a = offsetOf(r.startContainer, r.startOffset);
      var b = offsetOf(r.endContainer, r.endOffset);
      if (a === null || b === null || a === b) return;
      pending = { s: Math.min(a, b), e: Math.max(a, b) };
      trimPending();
      sel.removeAllRanges();
      var q = spanQuestion();
      if (q && questions[active] !== q) activate(questions.indexOf(q), false);
      else renderText();
    });
    questions.forEach(function (q) {
      if (q.dataset.kind !== "spans") return;
      q.querySelectorAll("button.span-label").forEach(function (button) {
        button.addEventListener("click", function () {
          applyLabel(q, parseInt(button.dataset.index, 10));
        });
      });
    });
    renderText();
  }

  /* Typing in a rewrite: autosave after a pause (htmx delays the request). */
  form.querySelectorAll("textarea").forEach(function (t) {
    t.addEventListener("input", changed);
  });

  function byKey(q, key) {
    return q.querySelector('[data-hotkey="' + key + '"]');
  }
  function digit(q, key) {
    var kind = q.dataset.kind;
    if (kind === "rating") return rate(q, key);
    var target = byKey(q, key);
    if (!target) return;
    if (kind === "spans") return applyLabel(q, parseInt(target.dataset.index, 10));
    if (kind === "single_label" || kind === "pairwise") {
      if (!target.checked) target.click();
      activate(active + 1, true);
    } else if (kind === "multi_label") {
      target.click();
    }
  }
  /* Model suggestions: "a" fills them in (the annotator still submits). */
  var suggestionData = document.getElementById("suggestions-data");
  var SUGGESTED = suggestionData ? JSON.parse(suggestionData.textContent) : {};
  function check(input) {
    if (input && !input.checked) input.checked = true;
  }
  function acceptSuggestions() {
    var filled = false;
    questions.forEach(function (q) {
      var values = SUGGESTED[q.dataset.key];
      if (!values) return;
      var name = "q-" + q.dataset.key;
      var inputs = Array.prototype.slice.call(q.querySelectorAll("input"));
      function byValue(field, value) {
        return inputs.filter(function (el) {
          return el.name === field && el.value === String(value);
        })[0];
      }
      if (q.dataset.kind === "single_label" && values.label !== undefined) {
        check(byValue(name, values.label));
      } else if (q.dataset.kind === "multi_label" && Array.isArray(values.labels)) {
        inputs.forEach(function (el) {
          if (el.name === name) el.checked = values.labels.indexOf(el.value) !== -1;
        });
      } else if (q.dataset.kind === "rating" && values.ratings) {
        Object.keys(values.ratings).forEach(function (attribute) {
          check(byValue(name + "-" + attribute, values.ratings[attribute]));
        });
      } else if (q.dataset.kind === "pairwise" && values.choice) {
        check(byValue(name, values.choice + ":" + (values.strength || 0)));
      } else {
        return;
      }
      filled = true;
    });
    if (!filled) return;
    record();
    changed();
  }

  function press(id) {
    tick();
    var button = document.getElementById(id);
    if (button.form === form) form.requestSubmit(button);
    else button.click();
  }

  function submit() {
    press("submit");
  }

  annotateKeys(submit, function (e) {
    var q = questions[active];
    var kind = q ? q.dataset.kind : "";
    if (/^[0-9]$/.test(e.key) && q) {
      e.preventDefault();
      digit(q, e.key);
    } else if (e.key === "Enter") {
      e.preventDefault();
      press("submit");
    } else if (e.key === "s") {
      press("skip");
    } else if (e.key === "Backspace") {
      e.preventDefault();
      press("back");
    } else if (e.key === "u") {
      undo();
    } else if (e.key === "a") {
      acceptSuggestions();
    } else if (e.key === "]") {
      activate(active + 1, true);
    } else if (e.key === "[") {
      activate(active - 1, true);
    } else if (kind === "spans" && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
      e.preventDefault();
      moveWord(e.key === "ArrowRight" ? 1 : -1, e.shiftKey);
    } else if (kind === "spans" && e.key === "x" && q._spans.length) {
      q._spans.pop();
      saveSpans(q);
    } else if (kind === "rating" && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      var at = parseInt(q.dataset.attr || "0", 10) + (e.key === "ArrowDown" ? 1 : -1);
      q.dataset.attr = String(Math.max(0, Math.min(rows(q).length - 1, at)));
      markAttribute(q);
    }
  });

  activate(0, false);
})();
