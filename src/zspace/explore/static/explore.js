// zspace explorer: a WebGL scatter of the latent points; hover shows an image, a click on a PCA plane decodes,
// a click on a map (t-SNE, UMAP) picks the nearest point and decodes it.
// Coordinates arrive as base64 little-endian float32 (about 1 MB per 100k points), class codes as uint8/uint16.
// Beyond the server's max_drawn points a view comes as a fixed random subsample (``rows``) over a density layer
// (binned counts of all points, drawn as a heatmap); zooming asks for the visible region again (more of its points,
// finer bins), and hover and click find the nearest of all points on the server (api/nearest).
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
    rows: null, density: null, sampledView: false, box: null, seq: 0, zoomTimer: null, pendingAt: null,
    hoverBusy: false,
  };
  const TITLES = { pca: "the points", tsne: "the t-SNE map", umap: "the UMAP map" };
  const HOVER_PX = 15; // a server-side nearest point counts as hovered within this many pixels
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
  const typed = { float32: Float32Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array };
  const decodeArray = (b64, dtype) => new typed[dtype](bytes(b64));

  const viewQuery = () => (state.view === "pca" ? `view=pca&pcs=${state.pcs.join(",")}` : `view=${state.view}`);
  const rowOf = (i) => (state.rows ? state.rows[i] : i); // the data row of drawn point i

  // Load the view's points (all, or a subsample over a density layer), of region ``box`` [x0, x1, y0, y1] or all.
  async function loadPoints(box) {
    const seq = ++state.seq;
    const view = state.view;
    const region = box ? `&x0=${box[0]}&x1=${box[1]}&y0=${box[2]}&y1=${box[3]}` : "";
    status(`loading ${TITLES[view]}...`);
    const { code, body } = await api(`api/points?${viewQuery()}${region}`);
    if (seq !== state.seq) return; // a newer request (another view, zoom or plane) has been made
    if (code === 202) {
      status(`computing ${TITLES[view]} (once; it is cached beside the latents)...`);
      setTimeout(() => { if (seq === state.seq) loadPoints(box).catch((e) => status(e.message, true)); }, 1500);
      return;
    }
    state.x = decodeArray(body.x, body.dtype);
    state.y = decodeArray(body.y, body.dtype);
    state.rows = body.rows ? decodeArray(body.rows, "uint32") : null;
    state.density = body.density || null;
    state.sampledView = (body.n_total || body.n) > state.info.max_drawn;
    state.nTotal = body.n_total || body.n;
    state.nInside = body.n_inside === undefined ? body.n : body.n_inside;
    state.box = box || null;
    state.labels = body.labels;
    draw(!box);
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

  // The density layer: log counts of all points in bins over the requested region (empty bins transparent).
  function densityTrace() {
    const d = state.density;
    const [bx, by] = d.bins;
    const counts = decodeArray(d.counts, d.dtype);
    const z = [];
    for (let j = 0; j < by; j++) {
      const row = new Array(bx);
      for (let i = 0; i < bx; i++) {
        const c = counts[j * bx + i];
        row[i] = c > 0 ? Math.log1p(c) : null;
      }
      z.push(row);
    }
    const dx = (d.x1 - d.x0) / bx;
    const dy = (d.y1 - d.y0) / by;
    return {
      type: "heatmap", z, x0: d.x0 + dx / 2, dx, y0: d.y0 + dy / 2, dy, zmin: 0, zmax: Math.log1p(Math.max(d.max, 1)),
      colorscale: [[0, "#e8eef7"], [1, "#1a3a6b"]], showscale: false, hoverinfo: "skip", zsmooth: false, opacity: 0.9,
    };
  }

  // Colour codes of the drawn points (a subsample draws codes[rows[i]]).
  function drawnCodes() {
    if (!state.codes || !state.rows) return state.codes;
    const out = new state.codes.constructor(state.rows.length);
    for (let i = 0; i < out.length; i++) out[i] = state.codes[state.rows[i]];
    return out;
  }

  function draw(newCoordinates) {
    const n = state.x.length;
    const k = Math.max(state.names.length, 1);
    const codes = drawnCodes();
    const trace = {
      type: hasWebGL ? "scattergl" : "scatter", mode: "markers", x: state.x, y: state.y, hoverinfo: "none",
      marker: {
        size: n > 50000 ? 2 : n > 5000 ? 3 : 5, opacity: 0.8, color: codes || PALETTE[0],
        colorscale: colourscale(k), cmin: -0.5, cmax: k - 0.5, showscale: false,
      },
    };
    const traces = state.density ? [densityTrace(), trace] : [trace];
    const layout = {
      xaxis: { title: { text: state.labels[0] }, zeroline: false },
      yaxis: { title: { text: state.labels[1] }, zeroline: false },
      hovermode: "closest", dragmode: "zoom", margin: { l: 60, r: 10, t: 10, b: 50 }, showlegend: false,
      uirevision: `${state.view}-${state.pcs.join(",")}`,
    };
    Plotly.react(plot, traces, layout, { displaylogo: false, responsive: true }).then(() => {
      if (!state.bound) {
        plot.on("plotly_hover", onHover);
        plot.on("plotly_click", onPointClick);
        plot.on("plotly_relayout", onRelayout);
        plot.addEventListener("click", onClick);
        plot.addEventListener("mousemove", onMove);
        state.bound = true;
      }
      const note = hasWebGL ? "" : " (no WebGL here: an SVG scatter, slow for many points)";
      const shown = state.rows
        ? `${n.toLocaleString()} of ${state.nInside.toLocaleString()} points drawn` +
          `${state.box ? " in this region" : ""} (${state.nTotal.toLocaleString()} in all; the shading counts ` +
          "every point; hover and click find any of them; zoom in for more)"
        : `${n.toLocaleString()} points`;
      status(`${shown}${note}`);
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

  function showHovered(row) {
    state.hovered = row;
    $("thumb-caption").textContent = describe(row);
    if (state.info.has_images) $("thumb").src = `api/thumb/${row}.png`;
    else $("thumb-caption").textContent += ": the run's images are not available";
  }

  const scatterPoint = (event) => event.points.find((p) => p.data.type !== "heatmap");

  function onHover(event) {
    if (state.sampledView) return; // the nearest of all points comes from the server (onMove), not of those drawn
    const p = scatterPoint(event);
    if (p) showHovered(rowOf(p.pointIndex));
  }

  function choose(row) {
    state.chosen = row;
    $("base-row").textContent = `the chosen ${describe(row)}`;
  }

  function onPointClick(event) {
    const p = scatterPoint(event);
    if (p && state.view === "pca") choose(rowOf(p.pointIndex));
  }

  // The pixel position of data coordinates (x, y) in the plot element.
  function pixelOf(x, y) {
    const full = plot._fullLayout;
    return { x: full.xaxis._offset + full.xaxis.c2p(x), y: full.yaxis._offset + full.yaxis.c2p(y) };
  }

  // The nearest of all points (server-side) to data coordinates ``at``, or null beyond HOVER_PX pixels.
  async function nearestTo(at, px) {
    const { code, body } = await api(`api/nearest?${viewQuery()}&x=${at.x}&y=${at.y}`);
    if (code !== 200) return null;
    const p = pixelOf(body.x, body.y);
    return Math.hypot(p.x - px.x, p.y - px.y) <= HOVER_PX ? body.row : null;
  }

  // Hover on a subsampled view: the nearest of all points under the mouse, one request at a time (the latest).
  function onMove(event) {
    if (!state.sampledView || !state.x) return;
    const rect = plot.getBoundingClientRect();
    const px = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    const at = dataAt(px.x, px.y);
    if (at === null) return;
    state.pendingAt = { at, px };
    if (!state.hoverBusy) hoverNearest().catch((e) => status(e.message, true));
  }

  async function hoverNearest() {
    state.hoverBusy = true;
    try {
      while (state.pendingAt) {
        const { at, px } = state.pendingAt;
        state.pendingAt = null;
        const row = await nearestTo(at, px);
        if (row !== null && row !== state.hovered) showHovered(row);
      }
    } finally {
      state.hoverBusy = false;
    }
  }

  // Zoom or pan on a subsampled view: ask for the visible region (its points, finer density); reset: all again.
  function onRelayout(event) {
    if (!state.sampledView) return;
    let box = null;
    if (event["xaxis.autorange"] || event["yaxis.autorange"]) box = null;
    else if (Object.keys(event).some((key) => key.startsWith("xaxis.range") || key.startsWith("yaxis.range"))) {
      const xr = plot._fullLayout.xaxis.range;
      const yr = plot._fullLayout.yaxis.range;
      box = [Math.min(...xr), Math.max(...xr), Math.min(...yr), Math.max(...yr)];
    } else return;
    if (JSON.stringify(box) === JSON.stringify(state.box)) return;
    clearTimeout(state.zoomTimer);
    state.zoomTimer = setTimeout(() => loadPoints(box).catch((e) => status(e.message, true)), 150);
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

  // The pixel position of drawn point ``i`` (data row rowOf(i)) in the plot element (from its top-left), for tests.
  const pointPixel = (i) => pixelOf(state.x[i], state.y[i]);

  function onClick(event) {
    const now = performance.now();
    if (now - state.lastClick < 80) return; // plotly's own re-dispatched click after a native one
    state.lastClick = now;
    const rect = plot.getBoundingClientRect();
    const at = dataAt(event.clientX - rect.left, event.clientY - rect.top);
    if (at === null) return;
    if (state.view !== "pca") { // a map: the nearest point under the click (of all points), decoded
      const px = { x: event.clientX - rect.left, y: event.clientY - rect.top };
      nearestTo(at, px).then((row) => {
        if (row === null) $("decoded-caption").textContent = "no point under the click: click a point of the map";
        else return decodePoint(row);
      }).catch((e) => status(e.message, true));
      return;
    }
    decodeAt(at.x, at.y).catch((e) => status(e.message, true));
  }

  // A point of a map, chosen: its image and the decoder's image of its own latent, with its nearest training images.
  async function decodePoint(row) {
    choose(row);
    showHovered(row);
    if (!state.info.can_decode) {
      $("decoded-caption").textContent = `${describe(row)}: there is no model to decode with`;
      return;
    }
    const { body } = await api(`api/decode?pcs=${state.pcs.join(",")}&base=${row}&k=${state.info.k}`);
    state.lastDecode = body;
    showDecoded(body, `the decoder's image of ${describe(row)}; |z| = ${body.z_norm.toFixed(2)}`);
  }

  function showDecoded(body, caption) {
    $("decoded").src = body.image;
    $("decoded-caption").textContent = caption;
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

  async function decodeAt(x, y) {
    if (!state.info.can_decode) throw new Error("there is no model to decode with");
    const usePoint = $("base-point").checked && state.chosen !== null;
    const base = usePoint ? String(state.chosen) : "mean";
    const url = `api/decode?pcs=${state.pcs.join(",")}&x=${x}&y=${y}&base=${base}&k=${state.info.k}`;
    const { body } = await api(url);
    state.lastDecode = body;
    const others = usePoint ? `those of point ${state.chosen}` : "the mean";
    showDecoded(body,
      `PC${state.pcs[0]} = ${x.toPrecision(3)}, PC${state.pcs[1]} = ${y.toPrecision(3)}; other PCs at ${others}; |z| = ${body.z_norm.toFixed(2)}`);
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

  window.zspaceExplorer = {
    ready: false, draws: 0, state, dataAt, pointPixel, pixelOf, rowOf, decodeAt, decodePoint, webgl: hasWebGL,
  };
  start().catch((e) => status(e.message, true));
})();
