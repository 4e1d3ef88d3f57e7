// Small behaviours of the web app's pages (no inline scripts: the CSP forbids them).
(function () {
  // "Copy" buttons: data-copy names the element (a textarea or a <pre>) whose text to copy.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(
      function () { button.textContent = "Copied"; },
      function () { source.focus(); if (source.select) source.select(); button.textContent = "Press Ctrl+C"; }
    );
  });
})();
