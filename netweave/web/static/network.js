// The network view: an account's neighbourhood drawn with Cytoscape.js (from npm, see package.json).
import cytoscape from "./vendor/cytoscape/cytoscape.esm.min.js";

const root = document.getElementById("network");
const detail = document.getElementById("network-detail");
const colours = { partners: "#616e7c", knows: "#616e7c", introduction: "#0b7a75", suggestion: "#c27803" };

fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
  .then((answer) => {
    if (!answer.ok) throw new Error(`the network could not be read (${answer.status})`);
    return answer.json();
  })
  .then(({ elements }) => {
    const cy = cytoscape({
      container: root,
      elements,
      layout: { name: "concentric", concentric: (node) => (node.data("centre") ? 2 : 1), levelWidth: () => 1,
                minNodeSpacing: 70, padding: 40, animate: false },
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 11, "text-wrap": "wrap", "text-max-width": 110,
                                      "text-valign": "bottom", "text-margin-y": 4, "text-background-color": "#fff",
                                      "text-background-opacity": 0.85, "text-background-padding": 2,
                                      "background-color": "#9aa5b1", width: 18, height: 18, color: "#1f2933" } },
        { selector: "node[?mine]", style: { "background-color": "#0b7a75" } },
        { selector: "node[?centre]", style: { width: 30, height: 30, "font-weight": "bold" } },
        { selector: "edge", style: { width: 2, "curve-style": "bezier", "line-color": (e) => colours[e.data("kind")] } },
        { selector: "edge[kind = 'suggestion']", style: { "line-style": "dashed" } },
        { selector: ":selected", style: { width: 4, "overlay-opacity": 0.1 } },
      ],
    });
    window.netweaveNetwork = cy; // for the browser tests
    cy.on("tap", "edge", (event) => {
      const edge = event.target;
      detail.textContent = `${edge.source().data("label")} and ${edge.target().data("label")}: ${edge.data("label")}`;
    });
    cy.on("tap", "node[href]", (event) => { window.location.assign(event.target.data("href")); });
  })
  .catch((error) => { detail.textContent = error.message + "; every connection is listed below."; });
