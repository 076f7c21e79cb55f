// Search results show a 240-character plain-text window of each page (Sphinx's searchtools), added
// after MathJax has typeset the page, so their inline math would read as raw TeX ("\(p\)"). Each new
// snippet is cleaned (a formula cut by the window's edges is dropped, with "...") and typeset.
(function () {
  "use strict";
  const OPEN = "\\(", CLOSE = "\\)";
  function clean(text) {
    const firstClose = text.indexOf(CLOSE), firstOpen = text.indexOf(OPEN);
    if (firstClose !== -1 && (firstOpen === -1 || firstClose < firstOpen)) {
      text = "..." + text.slice(firstClose + CLOSE.length);  // the window starts inside a formula
    }
    const lastOpen = text.lastIndexOf(OPEN), lastClose = text.lastIndexOf(CLOSE);
    if (lastOpen !== -1 && lastOpen > lastClose) {
      text = text.slice(0, lastOpen) + "...";  // the window ends inside a formula
    }
    return text;
  }
  const pending = new Set();
  let timer = null;
  function typeset() {
    timer = null;
    const nodes = [...pending];
    pending.clear();
    const done = () => nodes.forEach((p) => { p.dataset.math = "done"; });
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(() => MathJax.typesetPromise(nodes)).catch((e) => console.warn(e)).then(done);
    } else {
      done();
    }
  }
  function collect(root) {
    for (const p of root.querySelectorAll("p.context:not([data-math])")) {
      p.dataset.math = "pending";  // "done" once typeset (tests/browser.py waits for it)
      p.textContent = clean(p.textContent);
      pending.add(p);
    }
    if (pending.size && timer === null) timer = setTimeout(typeset, 50);
  }
  function start() {
    const results = document.getElementById("search-results");
    if (!results) return;
    collect(results);
    new MutationObserver(() => collect(results)).observe(results, { subtree: true, childList: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
