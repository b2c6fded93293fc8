import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError } from '../http/errors.js';
import { apiErrors, described, invalidField, locationHeader } from '../http/openapi.js';
import type { RouteDeps, RoutesPlugin } from '../http/route-types.js';
import { JobError } from '../jobs/contract/errors.js';
import { createReport } from './create.js';
import { openReportDownload, ReportFileMissingError } from './download.js';
import { ReportInputError, ReportNotReadyError } from './errors.js';
import { REPORT_CSV_EXAMPLE, REPORT_ID_EXAMPLE, reportExample } from './examples.js';
import { reportResponse, toReportResponse } from './present.js';
import { REPORT_TYPE_NAMES } from './report-types.js';
import type { ReportServices } from './services.js';
import { getReport } from './store.js';

// POST /api/v1/reports asks for a report (202 with the record, a repeat of a
// RUNNING or recently SUCCESS request gets that record, Report-Reused: true);
// GET reads it; GET .../download streams the file of a SUCCESS report (409
// with its status otherwise). The creator is the API key.

const idParams = z.object({ id: z.uuid({ message: 'must be a report id (UUID)' }) });
const badId = invalidField('id', 'must be a report id (UUID)');
const notFound = ['NOT_FOUND', `report ${REPORT_ID_EXAMPLE} not found`, { field: 'id' }] as const;
const reportLocation = locationHeader('the report (GET it until SUCCESS or FAIL)');

const createReportRequest = z.strictObject({
  type: z.enum(REPORT_TYPE_NAMES as [string, ...string[]], { error: `must be one of ${REPORT_TYPE_NAMES.join(', ')}` }),
  params: z
    .record(z.string(), z.unknown(), { error: 'must be an object of parameters' })
    .default({})
    .describe('uploads: {from, to, notification?: sent|pending}; invoices: {from, to, supplierId?, legalStatus?}; dates YYYY-MM-DD, inclusive'),
});

/** The routes, with the report services (S3) of the process that serves them. */
export const reportRoutes = (reportServices: () => ReportServices): RoutesPlugin => async (base, deps) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { db } = deps;

  app.post(
    '/api/v1/reports',
    {
      schema: {
        tags: ['reports'],
        operationId: 'createReport',
        summary: 'Ask for a report; generation runs in the background under a timeout',
        body: createReportRequest,
        response: {
          202: described(reportResponse, 'the report, RUNNING; or, with Report-Reused: true, an identical report already running or recently made', reportExample('RUNNING'), {
            ...reportLocation,
            'Report-Reused': { type: 'string', description: '"true": an existing report answers this request' },
          }),
          ...apiErrors(invalidField('params.from', 'must be a date YYYY-MM-DD from 1900-01-01 to 9999-12-30')),
        },
      },
    },
    async (req, reply) => {
      let result;
      try {
        result = await createReport(db, { type: req.body.type, params: req.body.params, creator: `apikey:${req.apiKey!.id}` }, { config: deps.config });
      } catch (err) {
        if (err instanceof ReportInputError) throw new HttpError('VALIDATION_FAILED', err.message, { field: err.field }, { cause: err });
        throw err;
      }
      reply.code(202).header('location', `/api/v1/reports/${result.report.id}`);
      if (!result.created) reply.header('report-reused', 'true');
      return toReportResponse(result.report);
    },
  );

  app.get(
    '/api/v1/reports/:id',
    {
      schema: {
        tags: ['reports'],
        operationId: 'getReport',
        summary: 'A report and how it ended (RUNNING, SUCCESS, FAIL)',
        params: idParams,
        response: { 200: described(reportResponse, 'the report', reportExample('SUCCESS')), ...apiErrors(badId, notFound) },
      },
    },
    async (req) => {
      const report = await getReport(db, req.params.id);
      if (!report) throw new HttpError('NOT_FOUND', `report ${req.params.id} not found`, { field: 'id' });
      return toReportResponse(report);
    },
  );

  app.get(
    '/api/v1/reports/:id/download',
    {
      schema: {
        tags: ['reports'],
        operationId: 'downloadReport',
        summary: "The report's CSV file, once SUCCESS (409 with its status before or after a FAIL)",
        params: idParams,
        response: {
          200: {
            description: 'the CSV file (Content-Disposition names it)',
            content: { 'text/csv': { schema: z.string().meta({ example: REPORT_CSV_EXAMPLE }) } },
          },
          ...apiErrors(
            badId,
            notFound,
            ['REPORT_NOT_READY', `report ${REPORT_ID_EXAMPLE} is RUNNING: only a SUCCESS report has a file`, { status: 'RUNNING', errorMessage: null }],
            ['UNAVAILABLE', 'report storage is unavailable; retry later'],
          ),
        },
      },
    },
    async (req, reply) => {
      // Streaming the body can outlast the S3 call deadline; a client that goes away stops it.
      // (The response's close, not the request's: a request "closes" once its body is read.)
      const gone = new AbortController();
      reply.raw.once('close', () => reply.raw.writableFinished || gone.abort());
      let download;
      try {
        download = await openReportDownload(db, reportServices(), req.params.id, { signal: gone.signal });
      } catch (err) {
        if (err instanceof ReportNotReadyError) {
          throw new HttpError('REPORT_NOT_READY', err.message, { status: err.status, errorMessage: err.errorMessage }, { cause: err });
        }
        if (err instanceof ReportFileMissingError) throw new HttpError('NOT_FOUND', err.message, { field: 'id' }, { cause: err });
        if (err instanceof JobError && (err.errorClass === 'transient' || err.errorClass === 'rate_limited')) {
          throw new HttpError('UNAVAILABLE', 'report storage is unavailable; retry later', {}, { cause: err });
        }
        throw err;
      }
      if (!download) throw new HttpError('NOT_FOUND', `report ${req.params.id} not found`, { field: 'id' });
      reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-length', download.size)
        .header('content-disposition', `attachment; filename="${download.fileName}"`);
      // No 200 schema: the body is the file itself, streamed, not serialised.
      return reply.send(download.stream as never);
    },
  );
};
