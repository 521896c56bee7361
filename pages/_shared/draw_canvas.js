// A square canvas to draw a density with the mouse (or a finger): click to place a point, drag to paint a stroke of
// points.  The points (in the plane's coordinates) go back to Python as the component's state "points" when a
// stroke ends; data.points redraws what Python holds, data.clear (a counter) empties the canvas.
const SIZE = 320, PAD = 6, SPACING = 7;  // px; a new point every SPACING px along a stroke

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let root = parentElement.querySelector("div.flowlab-draw");
  if (!root) {
    root = document.createElement("div");
    root.className = "flowlab-draw";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("aria-label", "drawing canvas");
    canvas.dataset.testid = "flowlab-draw-canvas";
    root.appendChild(canvas);
    parentElement.appendChild(root);
    root.__state = { points: [], clear: null, down: false, last: null };
    const st = root.__state;
    const toPlane = (ev) => {
      const r = canvas.getBoundingClientRect();
      const [[x0, x1], [y0, y1]] = st.box;
      const u = (ev.clientX - r.left - PAD) / (r.width - 2 * PAD), v = (ev.clientY - r.top - PAD) / (r.height - 2 * PAD);
      return [x0 + Math.min(1, Math.max(0, u)) * (x1 - x0), y1 - Math.min(1, Math.max(0, v)) * (y1 - y0), ev.clientX, ev.clientY];
    };
    const add = (ev) => {
      const [x, y, cx, cy] = toPlane(ev);
      if (st.last && Math.hypot(cx - st.last[0], cy - st.last[1]) < SPACING) return;
      st.last = [cx, cy];
      st.points.push([+x.toFixed(4), +y.toFixed(4)]);
      st.draw();
    };
    canvas.addEventListener("pointerdown", (ev) => {
      st.down = true;
      st.last = null;
      canvas.setPointerCapture(ev.pointerId);
      add(ev);
    });
    canvas.addEventListener("pointermove", (ev) => { if (st.down) add(ev); });
    const end = () => {
      if (!st.down) return;
      st.down = false;
      st.sent = st.points.length;
      setStateValue("points", st.points.slice());
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    st.draw = () => {
      const dpr = window.devicePixelRatio || 1;
      canvas.width = SIZE * dpr;
      canvas.height = SIZE * dpr;
      canvas.style.width = SIZE + "px";
      canvas.style.height = SIZE + "px";
      canvas.style.touchAction = "none";
      canvas.style.cursor = "crosshair";
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, SIZE, SIZE);
      ctx.strokeStyle = "#ced4da";
      ctx.strokeRect(0.5, 0.5, SIZE - 1, SIZE - 1);
      const [[x0, x1], [y0, y1]] = st.box;
      ctx.fillStyle = "#3b5bdb";
      for (const [x, y] of st.points) {
        const px = PAD + ((x - x0) / (x1 - x0)) * (SIZE - 2 * PAD), py = PAD + (1 - (y - y0) / (y1 - y0)) * (SIZE - 2 * PAD);
        ctx.beginPath();
        ctx.arc(px, py, 3, 0, 2 * Math.PI);
        ctx.fill();
      }
      ctx.fillStyle = "#868e96";
      ctx.font = "12px Inter, 'Segoe UI', Helvetica, Arial, sans-serif";
      ctx.fillText(st.points.length + " points", 8, SIZE - 8);
    };
  }
  const st = root.__state;
  st.box = data.box;
  if (st.clear !== data.clear) {  // Python asked for an empty canvas
    st.clear = data.clear;
    st.points = (data.points || []).slice();
  } else if (!st.down && (data.points || []).length > st.points.length) {
    st.points = data.points.slice();  // e.g. the page restored a drawing
  }
  st.draw();
}
