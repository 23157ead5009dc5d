/**
 * The stylesheet of the inspection views (client/views.ts): inlined into the inspection page by
 * page.ts and written to dist/explorer/style.css for the explorer by scripts/build-inspect-client.mjs.
 */
export const PAGE_CSS = `
:root { --fg: #1e293b; --muted: #64748b; --line: #e2e8f0; --accent: #2563eb; --bg: #f8fafc; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 12px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 20px; }
#meta { color: var(--muted); font-size: 12px; margin-top: 2px; }
#app { padding: 8px 28px 40px; max-width: 1280px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
h2 { margin: 0 0 6px; font-size: 16px; }
h3 { margin: 12px 0 6px; font-size: 13px; font-weight: 600; color: #334155; }
.muted, .caption { color: var(--muted); font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card .name { font-size: 12px; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .what { font-size: 11px; color: var(--muted); }
.tokens { display: flex; flex-wrap: wrap; row-gap: 5px; line-height: 1.2; max-height: 320px; overflow-y: auto; padding: 2px; }
.tok { padding: 2px 3px; margin-left: 1px; border-radius: 3px; border: 1px solid rgba(0,0,0,.08); cursor: default; white-space: pre; font-size: 14px; }
.tok.word { margin-left: 7px; }
.tok.special { font: 11px ui-monospace, monospace; color: #64748b; }
.tok:hover, .tok.linked { outline: 2px solid #b91c1c; }
.legend { display: flex; align-items: center; gap: 6px; margin-top: 8px; font-size: 11px; color: var(--muted); }
.legend .bar { display: inline-block; width: 160px; height: 10px; border: 1px solid var(--line); border-radius: 2px; }
.legend .caption { margin-left: 8px; min-width: 260px; }
table.data { border-collapse: collapse; font-size: 13px; }
table.data th { text-align: left; font-weight: 600; color: #475569; border-bottom: 1px solid var(--line); padding: 3px 8px; position: sticky; top: 0; background: #fff; }
table.data td { padding: 2px 8px; border-bottom: 1px solid #f1f5f9; }
table.data tfoot td { border-top: 1px solid var(--line); font-weight: 600; }
table.data tr.selected td { background: #fef3c7; font-weight: 600; }
table.data tr.pick { cursor: pointer; }
table.data tr.pick:hover td { background: #f1f5f9; }
td.passage-text { max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre; }
.hbar { display: inline-block; height: 9px; background: #f59e0b; border-radius: 2px; min-width: 1px; width: 0; }
td:has(> .hbar) { width: 120px; }
.hbar.sim { background: #3b82f6; }
.row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.panel { min-width: 0; }
.panel.fig { width: min-content; }
.panel.fig .legend { flex-wrap: wrap; }
.scroll { max-height: 560px; overflow: auto; }
.scroll.tall { max-height: 600px; border: 1px solid var(--line); border-radius: 4px; }
.controls { display: flex; gap: 16px; margin: 6px 0 10px; }
.controls select { font: inherit; padding: 2px 4px; }
#head-grid { display: flex; flex-wrap: wrap; gap: 8px; }
#head-grid figure { margin: 0; text-align: center; font-size: 11px; color: var(--muted); }
#head-grid canvas { display: block; width: 72px; height: 72px; border: 1px solid var(--line); cursor: pointer; image-rendering: pixelated; }
#head-grid canvas.on { outline: 2px solid #b91c1c; }
#tip { position: fixed; display: none; z-index: 10; pointer-events: none; background: #0f172a; color: #f8fafc; font: 12px/1.4 ui-monospace, monospace; padding: 6px 8px; border-radius: 4px; white-space: pre; max-width: 640px; }
`;
