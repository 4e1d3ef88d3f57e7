// The loyalty dashboard's chart: Chart.js (from npm, see package.json) over the page's figures.
(function () {
  const canvas = document.getElementById("weeks");
  if (!canvas || typeof Chart === "undefined") return; // the table below has the same figures
  const data = JSON.parse(canvas.dataset.chart);
  window.netweaveChart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Made", data: data.made, backgroundColor: "#9aa5b1" },
        { label: "Accepted by both", data: data.accepted, backgroundColor: "#0b7a75" },
      ],
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
               scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
})();
