/** The loss curve as a small standalone SVG: raw losses faint, a moving average bold. */
export function lossCurveSvg(losses: number[], title = 'training loss'): string {
  const width = 640;
  const height = 360;
  const pad = { left: 60, right: 20, top: 30, bottom: 40 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  // A loop, not Math.min(...losses): a long run's history would overflow the stack as spread arguments.
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of losses) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo > hi) [lo, hi] = [0, 1];
  const span = hi - lo || 1;
  const x = (i: number) => pad.left + (losses.length > 1 ? (i / (losses.length - 1)) * w : w / 2);
  const y = (v: number) => pad.top + h - ((v - lo) / span) * h;
  const path = (vals: number[]) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const window = Math.max(1, Math.round(losses.length / 20));
  // A running sum over the trailing window: slicing each window anew is quadratic in a long run's steps.
  let sum = 0;
  const smooth = losses.map((v, i) => {
    sum += v - (i >= window ? losses[i - window] : 0);
    return sum / Math.min(i + 1, window);
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * span);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>
${ticks.map((t) => `<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/><text x="${pad.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t.toPrecision(3)}</text>`).join('\n')}
<line x1="${pad.left}" y1="${pad.top + h}" x2="${pad.left + w}" y2="${pad.top + h}" stroke="black"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${pad.top + h}" stroke="black"/>
<text x="${pad.left + w / 2}" y="${height - 8}" text-anchor="middle">step (1..${losses.length})</text>
<path d="${path(losses)}" fill="none" stroke="#9ecae1" stroke-width="1"/>
<path d="${path(smooth)}" fill="none" stroke="#08519c" stroke-width="2"/>
</svg>
`;
}

/** The title holds the model name, which the user chooses: markup in it must stay text. */
function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
