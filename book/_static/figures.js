// On a narrow screen a wide figure keeps a legible scale (at least 75% of its natural size) and
// scrolls sideways inside its own box, instead of shrinking until its labels cannot be read.
(function () {
  const SCALE = 0.75;
  function fit(img) {
    const box = img.parentElement;
    box.classList.remove("figure-scroll");
    img.style.width = "";
    img.style.maxWidth = "";
    const room = box.clientWidth;
    if (img.naturalWidth * SCALE > room + 1) {
      img.style.width = Math.round(img.naturalWidth * SCALE) + "px";
      img.style.maxWidth = "none";
      box.classList.add("figure-scroll");
    }
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
})();
