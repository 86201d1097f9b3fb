/* The keyboard rules shared by the annotator and review pages (loaded before either).
 *
 * annotateKeys(submit, onKey): in a text field, Escape leaves it and Ctrl/Cmd+Enter
 * calls submit(); other keys are the field's. Elsewhere a key pressed with Ctrl, Cmd
 * or Alt is the browser's, and any other goes to onKey(event), the page's shortcuts.
 */
window.annotateKeys = function (submit, onKey) {
  "use strict";
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing =
      t instanceof HTMLTextAreaElement ||
      t instanceof HTMLSelectElement ||
      (t instanceof HTMLInputElement && /^(text|search|number|password|email)$/.test(t.type)) ||
      t.isContentEditable;
    if (typing) {
      if (e.key === "Escape") {
        e.preventDefault();
        t.blur();
      } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    onKey(e);
  });
};
