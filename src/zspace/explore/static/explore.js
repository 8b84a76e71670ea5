// zspace explorer: a WebGL scatter of the latent points; hover shows an image, a click on a PCA plane decodes.
// Coordinates arrive as base64 little-endian float32 (about 1 MB per 100k points), class codes as uint8/uint16.
"use strict";
(() => {
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#c7c7c7", "#dbdb8d", "#9edae5"];
  const $ = (id) => document.getElementById(id);
  const plot = $("plot");
  const state = {
    info: null, view: "pca", pcs: [1, 2], colour: "none", x: null, y: null, labels: ["", ""],
    codes: null, names: [], chosen: null, hovered: null, lastDecode: null, lastClick: 0, bound: false,
  };
  const hasWebGL = (() => {
    try {
      const c = document.createElement("canvas");
      return !!(c.getContext("webgl") || c.getContext("experimental-webgl"));
    } catch (e) {
      return false;
    }
  })();

  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  async function api(url) {
    const response = await fetch(url);
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      throw new Error(`${url}: ${response.status} ${response.statusText}`);
    }
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return { code: response.status, body };
  }

  function bytes(b64) {
    const s = atob(b64);
    const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u.buffer;
  }
  const typed = { float32: Float32Array, uint8: Uint8Array, uint16: Uint16Array };
  const decodeArray = (b64, dtype) => new typed[dtype](bytes(b64));

  async function loadPoints() {
    const query = state.view === "pca" ? `view=pca&pcs=${state.pcs.join(",")}` : "view=tsne";
    status(state.view === "pca" ? "loading points..." : "loading the t-SNE map...");
    const { code, body } = await api(`api/points?${query}`);
    if (code === 202) {
      status("computing the t-SNE map (once; it is cached beside the latents)...");
      setTimeout(() => loadPoints().catch((e) => status(e.message, true)), 1500);
      return;
    }
    state.x = decodeArray(body.x, body.dtype);
    state.y = decodeArray(body.y, body.dtype);
    state.labels = body.labels;
    draw(true);
  }

  async function loadColours() {
    const { body } = await api(`api/colours?by=${encodeURIComponent(state.colour)}`);
    state.codes = decodeArray(body.codes, body.dtype);
    state.names = body.names;
    legend();
    if (state.x) draw(false);
  }

  function colourscale(k) {
    const scale = [];
    for (let i = 0; i < k; i++) {
      const c = PALETTE[i % PALETTE.length];
      scale.push([i / k, c], [(i + 1) / k, c]);
    }
    return scale;
  }

  function draw(newCoordinates) {
    const n = state.x.length;
    const k = Math.max(state.names.length, 1);
    const trace = {
      type: hasWebGL ? "scattergl" : "scatter", mode: "markers", x: state.x, y: state.y, hoverinfo: "none",
      marker: {
        size: n > 50000 ? 2 : n > 5000 ? 3 : 5, opacity: 0.8, color: state.codes || PALETTE[0],
        colorscale: colourscale(k), cmin: -0.5, cmax: k - 0.5, showscale: false,
      },
    };
    const layout = {
      xaxis: { title: { text: state.labels[0] }, zeroline: false },
      yaxis: { title: { text: state.labels[1] }, zeroline: false },
      hovermode: "closest", dragmode: "zoom", margin: { l: 60, r: 10, t: 10, b: 50 }, showlegend: false,
      uirevision: `${state.view}-${state.pcs.join(",")}`,
    };
    Plotly.react(plot, [trace], layout, { displaylogo: false, responsive: true }).then(() => {
      if (!state.bound) {
        plot.on("plotly_hover", onHover);
        plot.on("plotly_click", onPointClick);
        plot.addEventListener("click", onClick);
        state.bound = true;
      }
      const note = hasWebGL ? "" : " (no WebGL here: an SVG scatter, slow for many points)";
      status(`${n.toLocaleString()} points${note}`);
      window.zspaceExplorer.ready = true;
      window.zspaceExplorer.draws += 1;
    });
  }

  function legend() {
    const box = $("legend");
    box.replaceChildren();
    if (state.colour === "none") return;
    const counts = new Array(state.names.length).fill(0);
    for (const c of state.codes) counts[c] += 1;
    state.names.forEach((name, i) => {
      const row = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = PALETTE[i % PALETTE.length];
      row.append(swatch, `${name} (${counts[i].toLocaleString()})`);
      box.append(row);
    });
  }

  function describe(row) {
    const name = state.codes && state.colour !== "none" ? state.names[state.codes[row]] : "";
    return `point ${row}${name ? ` (${name})` : ""}`;
  }

  function onHover(event) {
    const row = event.points[0].pointIndex;
    state.hovered = row;
    $("thumb-caption").textContent = describe(row);
    if (state.info.has_images) $("thumb").src = `api/thumb/${row}.png`;
    else $("thumb-caption").textContent += ": the run's images are not available";
  }

  function onPointClick(event) {
    state.chosen = event.points[0].pointIndex;
    $("base-row").textContent = `the chosen ${describe(state.chosen)}`;
  }

  // The data coordinates of a position in the plot element (pixels from its top-left), or null outside the axes.
  function dataAt(px, py) {
    const full = plot._fullLayout;
    if (!full) return null;
    const xa = full.xaxis;
    const ya = full.yaxis;
    const ax = px - xa._offset;
    const ay = py - ya._offset;
    if (ax < 0 || ay < 0 || ax > xa._length || ay > ya._length) return null;
    return { x: xa.p2c(ax), y: ya.p2c(ay) };
  }

  // The pixel position of point ``row`` in the plot element (from its top-left), for tests and bookmarks.
  function pointPixel(row) {
    const full = plot._fullLayout;
    return { x: full.xaxis._offset + full.xaxis.c2p(state.x[row]), y: full.yaxis._offset + full.yaxis.c2p(state.y[row]) };
  }

  function onClick(event) {
    const now = performance.now();
    if (now - state.lastClick < 80) return; // plotly's own re-dispatched click after a native one
    state.lastClick = now;
    const rect = plot.getBoundingClientRect();
    const at = dataAt(event.clientX - rect.left, event.clientY - rect.top);
    if (at === null) return;
    if (state.view !== "pca") {
      $("decoded-caption").textContent = "clicks decode on PCA planes only; switch the view to a PCA plane";
      return;
    }
    decodeAt(at.x, at.y).catch((e) => status(e.message, true));
  }

  async function decodeAt(x, y) {
    if (!state.info.can_decode) throw new Error("there is no model to decode with");
    const usePoint = $("base-point").checked && state.chosen !== null;
    const base = usePoint ? String(state.chosen) : "mean";
    const url = `api/decode?pcs=${state.pcs.join(",")}&x=${x}&y=${y}&base=${base}&k=${state.info.k}`;
    const { body } = await api(url);
    state.lastDecode = body;
    $("decoded").src = body.image;
    const others = usePoint ? `those of point ${state.chosen}` : "the mean";
    $("decoded-caption").textContent =
      `PC${state.pcs[0]} = ${x.toPrecision(3)}, PC${state.pcs[1]} = ${y.toPrecision(3)}; other PCs at ${others}; |z| = ${body.z_norm.toFixed(2)}`;
    const box = $("neighbours");
    box.replaceChildren();
    body.neighbours.forEach((row, i) => {
      const img = document.createElement("img");
      img.alt = `nearest training image ${i + 1}`;
      img.title = `${describe(row)}, distance ${body.distances[i].toPrecision(3)}`;
      if (state.info.has_images) img.src = `api/thumb/${row}.png`;
      box.append(img);
    });
  }

  function readControls() {
    const limit = (v) => Math.min(Math.max(parseInt(v, 10) || 1, 1), state.info.n_pcs);
    state.pcs = [limit($("pc-x").value), limit($("pc-y").value)];
    $("pc-x").value = state.pcs[0];
    $("pc-y").value = state.pcs[1];
    state.view = $("view").value;
    $("pc-controls").style.display = state.view === "pca" ? "" : "none";
    $("base-controls").style.display = state.view === "pca" ? "" : "none";
  }

  async function start() {
    const { body } = await api("api/info");
    state.info = body;
    document.title = `zspace explorer: ${body.name}`;
    $("title").textContent = `zspace explorer: ${body.name} (${body.n.toLocaleString()} points, z_dim ${body.z_dim})`;
    for (const id of ["pc-x", "pc-y"]) $(id).max = body.n_pcs;
    if (body.n_pcs < 2) $("pc-y").value = 1;
    for (const name of body.colourings) $("colour").append(new Option(name, name));
    state.colour = body.default_colouring;
    $("colour").value = state.colour;
    const fail = (e) => status(e.message, true);
    $("colour").addEventListener("change", () => { state.colour = $("colour").value; loadColours().catch(fail); });
    for (const id of ["view", "pc-x", "pc-y"]) {
      $(id).addEventListener("change", () => { readControls(); loadPoints().catch(fail); });
    }
    readControls();
    await loadColours();
    await loadPoints();
  }

  window.zspaceExplorer = { ready: false, draws: 0, state, dataAt, pointPixel, decodeAt, webgl: hasWebGL };
  start().catch((e) => status(e.message, true));
})();
