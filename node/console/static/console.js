// Palisade console: draws the charts whose data the page carries as JSON, and the
// "Copy link" buttons. No inline script anywhere (the CSP forbids it).
"use strict";

(function () {
  function drawCharts() {
    if (!window.Plotly) {
      return;
    }
    const blocks = document.querySelectorAll("script[type='application/json'][data-chart]");
    for (const block of blocks) {
      const target = document.getElementById(block.dataset.chart);
      if (!target) {
        continue;
      }
      const fig = JSON.parse(block.textContent);
      const config = Object.assign({displaylogo: false, responsive: true}, fig.config || {});
      window.Plotly.newPlot(target, fig.data, fig.layout, config).then(function () {
        target.classList.add("drawn");
      });
      // A point's customdata is the console URL it drills down to (built by the server).
      target.on("plotly_click", function (ev) {
        const point = ev && ev.points && ev.points[0];
        const dest = point && point.customdata;
        if (typeof dest === "string" && dest.startsWith("/console/")) {
          window.location.assign(dest);
        }
      });
    }
  }

  function copyLinks() {
    for (const button of document.querySelectorAll("[data-copy-link]")) {
      const field = button.parentElement.querySelector(".copy-url");
      button.addEventListener("click", function () {
        const href = window.location.href;
        const done = function () {
          button.textContent = "Link copied";
          window.setTimeout(function () { button.textContent = "Copy link"; }, 2000);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(href).then(done, function () { showField(field, href); });
        } else {
          showField(field, href);
        }
      });
    }
  }

  function showField(field, href) {
    // Without the clipboard API (plain http on another host): show the URL, selected.
    if (!field) {
      return;
    }
    field.value = href;
    field.hidden = false;
    field.select();
  }

  function tidyFilterForms() {
    // Leave empty filters out of the URL, so it holds exactly the filters that are set.
    for (const form of document.querySelectorAll("form[method='get']")) {
      form.addEventListener("submit", function () {
        for (const el of form.querySelectorAll("input[name], select[name]")) {
          if (!el.value) {
            el.disabled = true;
          }
        }
      });
    }
    // Coming back to the page (history), the fields must be usable again.
    window.addEventListener("pageshow", function () {
      for (const el of document.querySelectorAll("form[method='get'] [disabled]")) {
        el.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    copyLinks();
    tidyFilterForms();
  });
})();
