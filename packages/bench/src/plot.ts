import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import type { VegaLiteSpec } from './experiment.js';

/** Renders a Vega-Lite spec to SVG headless (a Vega View with renderer 'none', then toSVG()). */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const vg = compile(spec as unknown as Parameters<typeof compile>[0]).spec;
  const view = new View(parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
