import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';

// The /admin stylesheet and script, served by Herald as files (never inline):
// the Content-Security-Policy (src/http/security-headers.ts) allows scripts
// and styles from this origin only, so an injected <script> or style
// attribute would not run even if escaping ever failed. The URL carries a
// hash of the content, so a browser may cache them and still never keeps an
// old copy after an upgrade.

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center}
header a{color:#fff} header form{margin-left:auto}
main{padding:16px}
h1{font-size:22px;margin:8px 0}
h2{font-size:18px;margin:16px 0 8px}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f1f3f5}
.scroll{overflow:auto;max-height:80vh;margin:8px 0;border:1px solid #ddd}
.scroll table{width:max-content;min-width:100%;margin:0}
.scroll thead th{position:sticky;top:0;z-index:1}
.num{text-align:right} .inline{display:inline}
.red{color:#fff;background:#c1121f;padding:0 4px;border-radius:3px}
.st{padding:0 6px;border-radius:3px;font-size:12px;white-space:nowrap}
.st-pending{background:#e9ecef} .st-processing{background:#cfe2ff} .st-failed{background:#fff3cd}
.st-failed_permanent{background:#f8d7da;color:#842029;font-weight:600} .st-completed{background:#d1e7dd}
.st-submitted,.st-success,.st-DGI_AUTHORIZED,.st-PAC_AUTHORIZED{background:#d1e7dd}
.st-running,.st-REGISTERED{background:#cfe2ff}
.st-rejected,.st-fail,.st-PAC_REJECTED,.st-DGI_REJECTED{background:#f8d7da;color:#842029}
.err{font-family:monospace;font-size:12px;white-space:normal;min-width:16em;max-width:40em;word-break:break-word}
/* A long error shows 3 lines in the job table (the whole text: the job's page, /admin/jobs/ID). */
.clamp{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;line-clamp:3;overflow:hidden}
.one-job .clamp{display:block;-webkit-line-clamp:unset;line-clamp:unset}
.flash{background:#d1e7dd;padding:6px 10px;margin-bottom:8px}
.problem{background:#f8d7da;padding:6px 10px;margin-bottom:8px}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:12px}
.hook{color:#6c757d;font-style:italic}
`;

// The page's only script: confirmation on dangerous buttons, and filter
// selects that apply themselves. Everything works without it.
const SCRIPT = `
document.addEventListener('submit', function (e) {
  var msg = e.target.getAttribute('data-confirm');
  if (msg && !window.confirm(msg)) e.preventDefault();
});
document.querySelectorAll('form.filters select').forEach(function (s) {
  s.addEventListener('change', function () { s.form.submit(); });
});
`;

const ASSETS = {
  'admin.css': { type: 'text/css; charset=utf-8', body: STYLE },
  'admin.js': { type: 'text/javascript; charset=utf-8', body: SCRIPT },
} as const;

type AssetName = keyof typeof ASSETS;

const VERSION = crypto.createHash('sha256').update(STYLE).update(SCRIPT).digest('hex').slice(0, 12);

export function assetUrl(name: AssetName): string {
  return `/admin/assets/${name}?v=${VERSION}`;
}

/** GET /admin/assets/admin.css and admin.js: public (the login page needs them too). */
export function assetRoutes(app: FastifyInstance): void {
  for (const [name, asset] of Object.entries(ASSETS)) {
    app.get(`/admin/assets/${name}`, { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      reply.type(asset.type).header('cache-control', 'public, max-age=86400').send(asset.body),
    );
  }
}
