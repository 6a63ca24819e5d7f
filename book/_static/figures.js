// On a phone-sized screen a wide figure keeps a legible scale (at least 75% of its natural size)
// and scrolls sideways inside its own box, instead of shrinking until its labels cannot be read.
// The box can take the keyboard focus, so that it can be scrolled without a pointer too.
(function () {
  const SCALE = 0.75;
  const NARROW = 768; // px: wider windows show every figure whole, scaled to the text column
  function fit(img) {
    const box = img.parentElement;
    box.classList.remove("figure-scroll");
    box.removeAttribute("tabindex");
    img.style.width = "";
    img.style.maxWidth = "";
    const room = box.clientWidth;
    if (window.innerWidth < NARROW && img.naturalWidth * SCALE > room + 1) {
      img.style.width = Math.round(img.naturalWidth * SCALE) + "px";
      img.style.maxWidth = "none";
      box.classList.add("figure-scroll");
      box.setAttribute("tabindex", "0");
    }
  }
  function focusableFormulas() {
    document.querySelectorAll("article div.math").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) box.setAttribute("tabindex", "0");
      else box.removeAttribute("tabindex");
    });
  }
  function fitAll() {
    document.querySelectorAll("article div.cell_output img, article figure img").forEach(function (img) {
      if (img.closest(".animation")) return;
      if (img.complete && img.naturalWidth) fit(img);
      else img.addEventListener("load", function () { fit(img); }, { once: true });
    });
  }
  document.addEventListener("DOMContentLoaded", fitAll);
  window.addEventListener("resize", fitAll);
  window.addEventListener("load", focusableFormulas); // after MathJax has typeset (it starts on load)
  window.addEventListener("resize", focusableFormulas);
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    window.MathJax.startup.promise.then(focusableFormulas);
  }
})();
