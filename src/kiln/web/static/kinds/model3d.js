// 3D model pages: an interactive view of the model's GLB rendition (drag to turn, scroll or pinch
// to zoom), with the vendored <model-viewer>. Without this script the page shows the rendered
// picture. The viewer's code (1 MB) is fetched only on pages that show a model.
const figure = document.querySelector(".display-model3d[data-model]");

async function start() {
  const still = figure.querySelector(".model3d-still");
  const { ModelViewerElement } = await import(figure.dataset.viewer);
  // Models Kiln serves are plain GLB (trimesh output): never fetch decoders from another site.
  const none = new URL("./no-decoders/", figure.dataset.viewer).href;
  ModelViewerElement.dracoDecoderLocation = none;
  ModelViewerElement.ktx2TranscoderLocation = none;
  ModelViewerElement.meshoptDecoderLocation = none + "meshopt.js";
  const viewer = document.createElement("model-viewer");
  viewer.className = "model3d-viewer";
  viewer.setAttribute("src", figure.dataset.model);
  viewer.setAttribute("camera-controls", "");
  viewer.setAttribute("touch-action", "pan-y");
  viewer.setAttribute("camera-orbit", "35deg 65deg auto"); // the rendered picture's view
  viewer.setAttribute("shadow-intensity", "0.7");
  viewer.setAttribute("interaction-prompt", "none");
  if (still) {
    viewer.setAttribute("alt", still.alt);
    viewer.setAttribute("poster", still.currentSrc || still.src);
  }
  viewer.addEventListener("load", () => figure.classList.add("model3d-live"));
  viewer.addEventListener("error", () => {
    figure.classList.remove("model3d-live", "model3d-starting");
    viewer.remove();
  });
  figure.classList.add("model3d-starting");
  figure.insertBefore(viewer, figure.firstChild);
}

if (figure && "customElements" in window) {
  start().catch(() => figure.classList.remove("model3d-starting", "model3d-live"));
}
