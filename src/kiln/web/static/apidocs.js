// Starts Swagger UI on /api/docs. It lives in a file rather than inline in the page, so the page
// runs under the strict Content-Security-Policy (script-src 'self').
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") return;
  var Swagger = window.SwaggerUIBundle;
  window.ui = Swagger({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    deepLinking: false, // a link inside each operation's toggle button is a control nested in a control (axe: nested-interactive)
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // never ask an outside validator about this site's schema
    presets: [Swagger.presets.apis, Swagger.SwaggerUIStandalonePreset],
  });
})();
