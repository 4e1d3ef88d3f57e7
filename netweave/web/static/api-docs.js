// The API reference: Swagger UI (from npm, see package.json) over the generated OpenAPI document.
(function () {
  const root = document.getElementById("api-docs");
  if (typeof SwaggerUIBundle === "undefined") {
    root.textContent = "Swagger UI is not installed: run `make` (it installs the front-end packages from npm).";
    return;
  }
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: false, // true puts a link inside each operation's button (nested controls: axe-core)
    persistAuthorization: false,
    tryItOutEnabled: false,
  });

  // Swagger UI leaves a parameter's value field without a name and its examples scrollable by
  // mouse only; name them after their parameter and let the keyboard reach them (axe-core).
  function mend(node) {
    node.querySelectorAll("tr[data-param-name] :is(select, input, textarea):not([aria-label])").forEach((field) => {
      const row = field.closest("tr[data-param-name]");
      field.setAttribute("aria-label", row.dataset.paramName + " (" + (row.dataset.paramIn || "parameter") + ")");
    });
    node.querySelectorAll(".highlight-code pre:not([tabindex])").forEach((block) => {
      block.setAttribute("tabindex", "0");
    });
  }
  new MutationObserver(() => mend(root)).observe(root, { childList: true, subtree: true });
})();
