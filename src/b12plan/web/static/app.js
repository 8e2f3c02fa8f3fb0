/* b12plan web UI behaviour: draw charts, and keep focus where a keyboard user expects it.
   Everything works without this file (forms post, links navigate); it only improves things. */
(function () {
  "use strict";

  var plotlyLoading = null;

  /* plotly.min.js is large: load it once, only on pages that have a chart. */
  function loadPlotly() {
    if (window.Plotly) { return Promise.resolve(window.Plotly); }
    if (!plotlyLoading) {
      plotlyLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/static/vendor/plotly.min.js";
        script.onload = function () { resolve(window.Plotly); };
        script.onerror = function () { reject(new Error("plotly.min.js failed to load")); };
        document.head.appendChild(script);
      });
    }
    return plotlyLoading;
  }

  function drawCharts(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    var holders = Array.prototype.filter.call(found, function (holder) {
      if (holder.hasAttribute("data-drawing")) { return false; }
      holder.setAttribute("data-drawing", "true");
      return true;
    });
    if (!holders.length) { return; }
    loadPlotly().then(function (Plotly) {
      holders.forEach(function (holder) {
        var source = document.getElementById(holder.getAttribute("data-chart"));
        if (!source) { return; }
        var figure = JSON.parse(source.textContent);
        holder.textContent = "";  /* drop the "needs JavaScript" fallback */
        var narrow = window.matchMedia("(max-width: 40rem)").matches;
        if (narrow) {
          figure.layout.height = 640;
          figure.layout.margin = { l: 90, r: 8, t: 24, b: 30 };
        }
        /* Nothing may leave the site: no Plotly logo link, no "Share chart" / Chart Studio
           buttons (they would send the chart, with the patient's data, to a cloud service). */
        Plotly.newPlot(holder, figure.data, figure.layout, {
          responsive: true,
          displaylogo: false,
          showSendToCloud: false,
          showEditInChartStudio: false,
          plotlyServerURL: "",
          modeBarButtonsToRemove: [
            "select2d", "lasso2d", "toImage", "sendChartToCloud", "sendDataToCloud",
            "editInChartStudio"
          ]
        }).then(function () {
          holder.setAttribute("data-drawn", "true");
        });
      });
    }).catch(function (error) {
      holders.forEach(function (holder) {
        holder.textContent = "The chart could not be drawn; the same data is in the table below.";
      });
      if (window.console) { window.console.error(error); }
    });
  }

  /* After a form comes back with errors, put focus on the error summary; after a successful
     save, on the confirmation; otherwise on the main content (so screen readers announce it). */
  function placeFocus() {
    var target = document.querySelector(".error-summary") ||
      document.querySelector("[data-focus-on-load]") ||
      document.getElementById("main");
    if (target) {
      if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
      target.focus({ preventScroll: false });
    }
  }

  function ready() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    drawCharts(document);
    if (document.querySelector(".error-summary, [data-focus-on-load]")) { placeFocus(); }
  }

  if (window.htmx) {
    window.htmx.onLoad(function (element) { drawCharts(element); });
    document.body.addEventListener("htmx:afterSettle", function (event) {
      if (event.detail && event.detail.boosted) { placeFocus(); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
