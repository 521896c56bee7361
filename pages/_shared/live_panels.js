// FlowLab's live panels: a row of equal, equal-aspect 2-D panels drawn on canvases (points, or a density image with
// points on top), with axes, titles and a colour bar.  The data comes from pages/_shared/live.py; drawing a frame
// costs the browser a millisecond or two, so the Playground can redraw several times a second.
const MARGIN = { left: 34, right: 40, top: 22, bottom: 20 };
const FONT = "12px Inter, 'Segoe UI', Helvetica, Arial, sans-serif";
const TICK = "#868e96", AXIS = "#ced4da", TITLE = "#212529";

function decodePoints(b64) {
  if (!b64) return new Float32Array(0);
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function decodeBytes(b64) {
  if (!b64) return null;
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  return a >= 1000 || (a > 0 && a < 0.01) ? v.toExponential(0) : String(+v.toPrecision(3));
}

function drawPanel(canvas, panel, size, cache) {
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = size;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const [[x0, x1], [y0, y1]] = panel.range;
  const pw = w - MARGIN.left - MARGIN.right, ph = h - MARGIN.top - MARGIN.bottom;
  const X = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * pw;
  const Y = (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const finish = () => {
    // points
    const pts = cache.points(panel.points), lab = cache.bytes(panel.labels);
    const colours = panel.colours || ["#3b5bdb"];
    ctx.globalAlpha = panel.alpha || 0.6;
    const r = panel.radius || 1.4;
    for (let i = 0; i < pts.length / 2; i++) {
      const px = X(pts[2 * i]), py = Y(pts[2 * i + 1]);
      if (px < MARGIN.left || px > MARGIN.left + pw || py < MARGIN.top || py > MARGIN.top + ph) continue;
      ctx.fillStyle = colours[lab ? lab[i] % colours.length : 0];
      ctx.fillRect(px - r, py - r, 2 * r, 2 * r);
    }
    ctx.globalAlpha = 1;
    // frame, ticks, title
    ctx.strokeStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, pw - 1, ph - 1);
    ctx.font = FONT;
    ctx.fillStyle = TICK;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(x0, x1, Math.max(3, Math.floor(pw / 60)))) ctx.fillText(fmt(t), X(t), MARGIN.top + ph + 4);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(y0, y1, Math.max(3, Math.floor(ph / 40)))) ctx.fillText(fmt(t), MARGIN.left - 4, Y(t));
    ctx.fillStyle = TITLE;
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.font = "600 " + FONT;
    ctx.fillText(panel.title || "", MARGIN.left, MARGIN.top - 7);
    // colour bar of a density panel
    if (panel.colourbar) {
      const bx = MARGIN.left + pw + 8, bw = 8, stops = panel.colourbar.stops;
      const g = ctx.createLinearGradient(0, MARGIN.top + ph, 0, MARGIN.top);
      stops.forEach((c, i) => g.addColorStop(i / (stops.length - 1), c));
      ctx.fillStyle = g;
      ctx.fillRect(bx, MARGIN.top, bw, ph);
      ctx.font = "10px Inter, 'Segoe UI', Helvetica, Arial, sans-serif";
      ctx.fillStyle = TICK;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(fmt(panel.colourbar.max), bx - 2, MARGIN.top - 8);
      ctx.fillText("0", bx + bw + 2, MARGIN.top + ph - 4);
      ctx.save();
      ctx.translate(bx + bw + 10, MARGIN.top + ph / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(panel.colourbar.label || "", 0, 0);
      ctx.restore();
    }
  };
  if (panel.image) {
    const img = cache.image(panel.image);
    const paint = () => {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(img, MARGIN.left, MARGIN.top, pw, ph);
      finish();
    };
    if (img.complete && img.naturalWidth) paint();
    else img.onload = paint;
  } else {
    finish();
  }
}

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector("div.flowlab-live");
  if (!root) {
    root = document.createElement("div");
    root.className = "flowlab-live";
    parentElement.appendChild(root);
  }
  // decoded data kept between frames: the same target points are not decoded again
  const store = (root.__flowlab = root.__flowlab || { points: new Map(), bytes: new Map(), images: new Map() });
  const memo = (map, key, make) => {
    if (!map.has(key)) {
      if (map.size > 16) map.clear();
      map.set(key, make(key));
    }
    return map.get(key);
  };
  const cache = {
    points: (b64) => memo(store.points, b64 || "", decodePoints),
    bytes: (b64) => (b64 ? memo(store.bytes, b64, decodeBytes) : null),
    image: (src) => memo(store.images, src, (s) => { const im = new Image(); im.src = s; return im; }),
  };
  const panels = (data && data.panels) || [];
  const draw = () => {
    const width = root.clientWidth || parentElement.clientWidth || 900;
    const gap = 8, n = Math.max(1, panels.length);
    let w = Math.floor((width - gap * (n - 1)) / n);
    const [[x0, x1], [y0, y1]] = panels.length ? panels[0].range : [[0, 1], [0, 1]];
    const inner = w - MARGIN.left - MARGIN.right;
    let h = Math.round(inner * ((y1 - y0) / (x1 - x0))) + MARGIN.top + MARGIN.bottom;
    const maxH = data.max_height || 340;
    if (h > maxH) {  // too tall: narrower panels keep the aspect
      h = maxH;
      w = Math.round((h - MARGIN.top - MARGIN.bottom) * ((x1 - x0) / (y1 - y0))) + MARGIN.left + MARGIN.right;
    }
    while (root.children.length > panels.length) root.removeChild(root.lastChild);
    panels.forEach((p, i) => {
      let c = root.children[i];
      if (!c) {
        c = document.createElement("canvas");
        root.appendChild(c);
      }
      c.setAttribute("aria-label", p.title || "panel");
      c.dataset.frame = String(data.frame || 0);
      drawPanel(c, p, [w, h], cache);
    });
  };
  draw();
  if (!root.__observer) {
    root.__observer = new ResizeObserver(() => root.__redraw && root.__redraw());
    root.__observer.observe(root);
  }
  root.__redraw = draw;
}
