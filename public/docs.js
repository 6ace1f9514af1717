// Starts Swagger UI (served by this server from the swagger-ui-dist package) on the API's OpenAPI document.
// An external file because the page's Content-Security-Policy allows no inline script. Every URL is relative
// to /api/docs, so the page also works behind a reverse proxy under a path prefix.
(function () {
  'use strict';
  var root = document.getElementById('swagger-ui');
  if (typeof window.SwaggerUIBundle !== 'function') {
    root.textContent = 'The API reference could not be loaded. The OpenAPI document is at ' + root.getAttribute('data-openapi-url') + '.';
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute('data-openapi-url'),
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    // Nothing leaves this server: no online validator badge, no remote configuration.
    validatorUrl: null,
    queryConfigEnabled: false,
    // API keys typed into "Authorize" live in this tab only (never in localStorage).
    persistAuthorization: false,
    deepLinking: true,
    displayOperationId: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
  });
})();
