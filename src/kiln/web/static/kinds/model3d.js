// 3D model pages: an interactive view of the model's GLB rendition (drag to turn, scroll or pinch
// to zoom), with the vendored <model-viewer>. Without this script the page shows the rendered
// picture. The viewer's code (1 MB) is fetched only on pages that show a model.
const figure = document.querySelector(".display-model3d[data-model]");

async function start() {
  const still = figure.querySelector(".model3d-still");
  const { ModelViewerElement } = await import(figure.dataset.viewer);
  // Models Kiln serves are plain GLB (trimesh output) and never need the Draco or KTX2 decoders,
  // which model-viewer would fetch from another site: point them at this site instead. (Meshopt
  // is decoded by code inside the bundle; setting its location would fetch a script at once.)
  const none = new URL("./no-decoders/", new URL(figure.dataset.viewer, document.baseURI)).href;
  ModelViewerElement.dracoDecoderLocation = none;
  ModelViewerElement.ktx2TranscoderLocation = none;
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
  start().catch((error) => {
    figure.classList.remove("model3d-starting", "model3d-live");
    console.warn("The 3D viewer could not start; the picture stays.", error);
  });
}
