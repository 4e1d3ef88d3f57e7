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
})();
