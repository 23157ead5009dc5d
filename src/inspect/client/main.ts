/**
 * The inspection page's script: its data source is the report the CLI wrote into the page (the
 * `report-data` JSON element); the views are views.ts's. `npm run build` bundles this file with the
 * views (scripts/build-inspect-client.mjs) to dist/inspect/client/main.js, which `page.ts` inlines.
 */
import type { InspectReport } from '../report.js';
import { renderReport } from './views.js';

// Runs once the page is parsed (module scripts are deferred); a failure is shown to tests via data-error.
renderReport(JSON.parse(document.getElementById('report-data')!.textContent!) as InspectReport).catch((e: unknown) => {
  console.error(e);
  document.body.dataset['error'] = String((e instanceof Error && e.stack) || e);
});
