// Accessible names for the ipywidgets slider handles (book/_ext/accessibility.py says why).
// noUiSlider's handle is a role="slider" div with no name, and its aria-valuetext is the option's
// index ("6"), not what the reader sees ("0.30"). The widgets render after the page loads, and the
// value changes as the slider moves, so a MutationObserver keeps both attributes current.
(function () {
  "use strict";
  function sliderName(slider) {
    const own = slider.querySelector(":scope > .widget-label");
    if (own && own.textContent.trim()) return own.textContent.trim();
    // dropout_lib.widgets.frame_slider puts an HTML label widget before the slider in an HBox.
    const row = slider.parentElement;
    const label = row && row.querySelector(":scope > .widget-html");
    if (label && label.textContent.trim()) return label.textContent.trim();
    return "slider";
  }
  function update() {
    for (const handle of document.querySelectorAll(".widget-slider .noUi-handle")) {
      const slider = handle.closest(".widget-slider");
      const name = sliderName(slider);
      if (handle.getAttribute("aria-label") !== name) handle.setAttribute("aria-label", name);
      const readout = slider.querySelector(".widget-readout");
      const text = readout && readout.textContent.trim();
      if (text && handle.getAttribute("aria-valuetext") !== text) handle.setAttribute("aria-valuetext", text);
    }
  }
  function start() {
    update();
    new MutationObserver(update).observe(document.body, {
      subtree: true, childList: true, characterData: true,
      attributes: true, attributeFilter: ["aria-valuenow"],
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
