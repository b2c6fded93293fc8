import { invoiceRoutes } from '../invoices/routes.js';
import { reportRoutes } from '../reports/routes.js';
import { adminRoutes } from '../admin/routes.js';
import { pacWebhookRoutes } from '../providers/webhooks.js';
import type { RoutesPlugin } from './server.js';

// Every capability's routes, one plugin per line. A capability adds its line
// here and nothing else in src/http.
export const ROUTE_PLUGINS: readonly RoutesPlugin[] = [invoiceRoutes, reportRoutes, adminRoutes, pacWebhookRoutes];
