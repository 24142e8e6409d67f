// Reload the page every data-seconds while a long job runs (its page stops including this script
// when the job is done). A static file: the dashboard's CSP allows no inline script.
(function () {
  const seconds = Number(document.currentScript.dataset.seconds || 3);
  setTimeout(() => window.location.reload(), 1000 * seconds);
})();
