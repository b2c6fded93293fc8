import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { queueNotificationResend, ResendRefused } from '../exporter/notify.js';
import { clearJob, retryJob, searchJobs } from '../jobs/store/admin.js';
import type { RouteDeps, RoutesPlugin } from '../http/route-types.js';
import { DEFAULT_UNSTICK_AFTER_MS, queueStatus, retryTarget, unstick } from '../queue/operations.js';
import { BIGINT_ID_MAX, DATE_LIMIT, addDays, digitsInt, idText, isoDate, safeRedirect, text } from '../lib/boundary.js';
import { esc, layout } from './html.js';
import { assetRoutes } from './assets.js';
import { attemptLogin, type LoginOutcome } from './login.js';
import { hashingGate } from './hashing-gate.js';
import { COOKIE_BASE, endSession, readSession, sessionSecret, startSession, type AdminPrincipal } from './session.js';
import { throttleSettings } from './throttle.js';
import { listEnvelopeViews } from './store-views.js';
import type { ProviderServices } from '../providers/services.js';
import { installInvoicePages, notFound } from './invoice-routes.js';
import { listJobKinds } from '../jobs/store/views.js';
import { renderTaric } from './view-domain.js';
import { JOB_STATUSES, PAGE_SIZE, renderBulkActions, renderCounters, renderFilters, renderJobTable } from './view-jobs.js';

// /admin: the operator's page (README.md in this folder). Routes are public
// to the API-key hook (config.public) and guarded here by the session cookie
// instead; every POST needs the CSRF token of the form it came from.

declare module 'fastify' {
  interface FastifyRequest {
    admin: AdminPrincipal | null;
  }
}

const page = { config: { public: true, html: true }, schema: { hide: true } } as const;
// Boundary types (src/lib/boundary.ts): uploads and invoices are int4 ids, jobs bigserial.
const intIdParams = z.object({ id: idText() });
const jobIdParams = z.object({ id: idText(BIGINT_ID_MAX) });
const backBody = z.object({ _csrf: text({ max: 200 }).optional(), back: text({ max: 2000 }).optional() }).passthrough();
const flash = text({ max: 300 }).optional();
const dateFilter = isoDate().or(z.literal('')).optional();
const jobsQuery = z.object({
  status: z.enum(JOB_STATUSES).or(z.literal('')).optional(),
  kind: text({ max: 100 }).optional(),
  subject: text({ max: 200 }).optional(),
  error: text({ max: 500 }).optional(),
  from: dateFilter,
  to: dateFilter,
  order: z.enum(['asc', 'desc']).default('desc'),
  page: digitsInt({ min: 1, max: 100_000 }).default(1),
  done: flash,
});
const loginBody = z
  .object({
    _csrf: text({ max: 200 }).optional(),
    name: text({ max: 200 }).optional(),
    password: text({ max: 1000 }).optional(),
    apiKey: text({ max: 200 }).optional(),
    next: text({ max: 2000 }).optional(),
  })
  .passthrough();

/** Only redirect back inside /admin (an open redirect would serve phishing), to a plain ASCII path. */
function safeBack(back: string | undefined, fallback = '/admin'): string {
  return safeRedirect(back, { under: '/admin', fallback });
}

function withFlash(url: string, message: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}done=${encodeURIComponent(message)}`;
}

function loginPage(csrfToken: string, opts: { next?: string; problem?: string } = {}): string {
  return layout(
    'Log in',
    `<form method="post" action="/admin/login" id="login">
<input type="hidden" name="_csrf" value="${esc(csrfToken)}"><input type="hidden" name="next" value="${esc(opts.next ?? '/admin')}">
<p><label>user <input name="name" autocomplete="username"></label></p>
<p><label>password <input type="password" name="password" autocomplete="current-password"></label></p>
<p>or <label>admin API key <input type="password" name="apiKey" size="50"></label></p>
<p><button type="submit">Log in</button></p></form>`,
    { problem: opts.problem },
  );
}

function waitText(seconds: number): string {
  return seconds < 120 ? `${seconds} second${seconds === 1 ? '' : 's'}` : `${Math.ceil(seconds / 60)} minutes`;
}

/** What the login page says, and with which status, when a login did not succeed. */
function loginRefusal(outcome: Exclude<LoginOutcome, { kind: 'ok' }>): { status: number; problem: string; retryAfterS?: number } {
  if (outcome.kind === 'refused') return { status: 401, problem: 'Unknown user, wrong password or not an admin key.' };
  if (outcome.kind === 'busy') return { status: 503, problem: 'Too many logins at once: try again in a second.', retryAfterS: 1 };
  const who = outcome.scope === 'user' ? 'this user' : 'your address';
  const what = outcome.lockedOut ? `Logins for ${who} are locked after too many failed attempts` : `Too many failed logins for ${who}`;
  return { status: 429, problem: `${what}: try again in ${waitText(outcome.retryAfterS)}. Nothing was checked.`, retryAfterS: outcome.retryAfterS };
}

/** The admin pages; `providers`: the composition root's provider services (the invoice pages' PDF link and PAC buttons). */
export const adminRoutes = (providers: () => ProviderServices): RoutesPlugin => async (app: FastifyInstance, deps: RouteDeps) => {
  const { db, config } = deps;
  await app.register(cookie, { secret: sessionSecret(config.ADMIN_SESSION_SECRET) });
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieOpts: { ...COOKIE_BASE, signed: true, sameSite: 'strict' },
  });
  app.decorateRequest('admin', null);
  assetRoutes(app);
  const gate = hashingGate(config.ADMIN_LOGIN_HASH_CONCURRENCY);
  const settings = throttleSettings(config);
  const cleaned = { at: 0 };

  const html = (reply: FastifyReply, body: string, code = 200) => reply.code(code).type('text/html; charset=utf-8').send(body);
  // Runs on every /admin route but the login ones: no session, no page.
  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    req.admin = await readSession(db, req, deps.now());
    if (req.admin) return;
    if (req.method === 'GET') return reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
    return html(reply, layout('Log in', '<p>Your session ended. <a href="/admin/login">Log in</a> again.</p>'), 401);
  };
  const guarded = { ...page, preHandler: [requireAdmin] };
  const guardedPost = { ...page, preHandler: [requireAdmin, app.csrfProtection] };
  const chrome = (req: FastifyRequest, reply: FastifyReply) => ({ csrf: reply.generateCsrf(), who: req.admin!.name });

  app.get('/admin/login', { ...page, schema: { hide: true, querystring: z.object({ next: text({ max: 2000 }).optional() }) } }, async (req, reply) => {
    const { next } = req.query as { next?: string };
    return html(reply, loginPage(reply.generateCsrf(), { next: safeBack(next) }));
  });

  app.post('/admin/login', { ...page, schema: { hide: true, body: loginBody }, preHandler: app.csrfProtection }, async (req, reply) => {
    const form = (req.body ?? {}) as { name?: string; password?: string; apiKey?: string; next?: string };
    const now = deps.now();
    const outcome = await attemptLogin({ db, log: req.log, gate, settings, now, cleaned }, form, req.ip);
    if (outcome.kind === 'ok') {
      await startSession(db, req, reply, outcome.who, config.ADMIN_SESSION_TTL_MS, now);
      return reply.redirect(safeBack(form.next), 303);
    }
    const refusal = loginRefusal(outcome);
    if (refusal.retryAfterS) reply.header('retry-after', String(refusal.retryAfterS));
    return html(reply, loginPage(reply.generateCsrf(), { next: safeBack(form.next), problem: refusal.problem }), refusal.status);
  });

  app.post('/admin/logout', { ...page, preHandler: app.csrfProtection }, async (req, reply) => {
    await endSession(db, req, reply);
    return reply.redirect('/admin/login', 303);
  });

  app.get('/admin', { ...guarded, schema: { hide: true, querystring: jobsQuery } }, async (req, reply) => {
    const f = req.query as z.infer<typeof jobsQuery>;
    const filters = {
      status: f.status || undefined, kind: f.kind || undefined, subject: f.subject?.trim() || undefined, error: f.error?.trim() || undefined,
      from: f.from || undefined, to: f.to || undefined, order: f.order, page: f.page,
    };
    // "to" includes its whole day; the boundary keeps to + 1 day within DATE_LIMIT.
    const to = filters.to ? new Date(`${addDays(filters.to, 1) ?? DATE_LIMIT}T00:00:00Z`) : undefined;
    const [status, found, kinds] = await Promise.all([
      queueStatus(db, deps.now()),
      searchJobs(db, {
        status: filters.status, kind: filters.kind, subjectId: filters.subject, errorText: filters.error,
        createdFrom: filters.from ? new Date(`${filters.from}T00:00:00Z`) : undefined, createdTo: to,
        order: filters.order, limit: PAGE_SIZE, offset: (filters.page - 1) * PAGE_SIZE,
      }),
      listJobKinds(db),
    ]);
    const c = chrome(req, reply);
    const body =
      renderCounters(status, config.ADMIN_PENDING_AGE_WARN_MS / 1000) +
      renderBulkActions(c.csrf, DEFAULT_UNSTICK_AFTER_MS / 1000) +
      `<h2>Jobs</h2>` + renderFilters(filters, kinds) +
      renderJobTable(found.rows, found.total, filters, c.csrf, req.url);
    return html(reply, layout('Jobs', body, { ...c, flash: f.done }));
  });

  app.post('/admin/jobs/:id/retry', { ...guardedPost, schema: { hide: true, params: jobIdParams, body: backBody } }, async (req, reply) => {
    const { id } = req.params as { id: number };
    const row = await retryJob(db, id);
    const back = safeBack((req.body as { back?: string }).back);
    return reply.redirect(withFlash(back, row ? `job ${id} is pending again` : `job ${id} was not failed (nothing done)`), 303);
  });

  app.post('/admin/jobs/:id/clear', { ...guardedPost, schema: { hide: true, params: jobIdParams, body: backBody } }, async (req, reply) => {
    const { id } = req.params as { id: number };
    const row = await clearJob(db, id);
    const back = safeBack((req.body as { back?: string }).back);
    return reply.redirect(withFlash(back, row ? `job ${id} deleted` : `job ${id} is running or gone (nothing done)`), 303);
  });

  app.post('/admin/jobs/retry-all-failed', { ...guardedPost, schema: { hide: true, body: backBody } }, async (_req, reply) => {
    const rows = await retryTarget(db, { allFailed: true });
    return reply.redirect(withFlash('/admin', `${rows.length} permanently failed job(s) are pending again`), 303);
  });

  app.post('/admin/jobs/unstick', { ...guardedPost, schema: { hide: true, body: backBody } }, async (_req, reply) => {
    const rows = await unstick(db);
    return reply.redirect(withFlash('/admin', `${rows.length} stuck job(s) are pending again`), 303);
  });

  // ?upload=N: that upload's envelope only (the job table links upload subjects here).
  app.get('/admin/taric', { ...guarded, schema: { hide: true, querystring: z.object({ upload: idText().optional(), done: flash }) } }, async (req, reply) => {
    const f = req.query as { upload?: number; done?: string };
    const c = chrome(req, reply);
    const rows = await listEnvelopeViews(db, { uploadId: f.upload });
    if (f.upload !== undefined && rows.length === 0) throw notFound(`upload ${f.upload}`, 'upload');
    const title = f.upload === undefined ? 'TARIC envelopes' : `Upload ${f.upload}`;
    return html(reply, layout(title, renderTaric(rows, c.csrf), { ...c, flash: f.done }));
  });

  // The same as `herald notify retry --upload ID`.
  app.post('/admin/uploads/:id/notify', { ...guardedPost, schema: { hide: true, params: intIdParams, body: backBody } }, async (req, reply) => {
    const { id } = req.params as { id: number };
    let message: string;
    try {
      const queued = await queueNotificationResend(db, id);
      message = `notification of upload ${id} queued as job ${queued.jobId}`;
    } catch (err) {
      if (!(err instanceof ResendRefused)) throw err;
      message = err.message;
    }
    return reply.redirect(withFlash('/admin/taric', message), 303);
  });

  installInvoicePages(app, deps, providers, { guarded, guardedPost, chrome, html, safeBack, withFlash });
};
