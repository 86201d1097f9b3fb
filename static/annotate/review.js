/* The review page, keyboard first: digits take an annotator's answer to the highlighted
 * question and move on, "o" switches to one's own answer, Enter saves and opens the next
 * item. No framework; nothing is written into the page but classes.
 */
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var questions = Array.prototype.slice.call(form.querySelectorAll("fieldset.review-question"));
  var active = 0;

  function activate(i) {
    if (!questions.length) return;
    active = Math.max(0, Math.min(i, questions.length - 1));
    questions.forEach(function (q, n) {
      q.classList.toggle("active", n === active);
    });
    questions[active].scrollIntoView({ block: "nearest" });
  }

  function ownRadio(q) {
    return q.querySelector('input[type=radio][value="own"][name^="pick-"]');
  }

  function syncOwn(q) {
    var own = ownRadio(q);
    var details = q.querySelector("details.own-editor");
    if (own && details && own.checked) details.open = true;
  }

  questions.forEach(function (q, n) {
    q.addEventListener("focusin", function () {
      if (active !== n) activate(n);
    });
    q.addEventListener("click", function () {
      if (active !== n) activate(n);
    });
    q.addEventListener("change", function () {
      syncOwn(q);
    });
    /* Editing one's own answer chooses it. */
    var editor = q.querySelector("details.own-editor");
    if (editor) {
      editor.addEventListener("input", function (e) {
        var own = ownRadio(q);
        if (own && e.target !== own) own.checked = true;
      });
    }
  });

  function take(q, key) {
    var radio = q.querySelector('input[type=radio][name^="pick-"][data-hotkey="' + key + '"]');
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function submit() {
    form.requestSubmit();
  }

  annotateKeys(submit, function (e) {
    var q = questions[active];
    if (/^[1-9]$/.test(e.key) && q) {
      e.preventDefault();
      if (take(q, e.key) && active < questions.length - 1) activate(active + 1);
    } else if (e.key === "o" && q) {
      e.preventDefault();
      take(q, "o");
      var field = q.querySelector("details.own-editor input:not([name^='pick-']), details.own-editor textarea");
      if (field) field.focus();
    } else if (e.key === "n" && q) {
      e.preventDefault();
      var note = q.querySelector("label.note textarea");
      if (note) note.focus();
    } else if (e.key === "]") {
      activate(active + 1);
    } else if (e.key === "[") {
      activate(active - 1);
    } else if (e.key === "Enter") {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  /* Start on the first question still without a pick (else the first). */
  var start = questions.findIndex(function (q) {
    return !q.querySelector('input[type=radio][name^="pick-"]:checked');
  });
  questions.forEach(syncOwn);
  activate(start < 0 ? 0 : start);
})();
