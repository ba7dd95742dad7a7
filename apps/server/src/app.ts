import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { agreementRoutes } from './agreements/routes.js';
import { auditRoutes } from './audit/routes.js';
import { cardRoutes } from './cards/routes.js';
import type { Config } from './config.js';
import { configurationRoutes } from './configurations/routes.js';
import { Issuers } from './configurations/service.js';
import { credentialRoutes } from './credentials/routes.js';
import { disbursementRoutes } from './disbursements/routes.js';
import { enrollmentRoutes } from './enrollments/routes.js';
import { eventRoutes } from './events/routes.js';
import { jobRoutes } from './jobs/routes.js';
import { notificationRoutes } from './notifications/routes.js';
import { notificationTargetRoutes } from './notifications/target-routes.js';
import { organizationRoutes } from './organizations/routes.js';
import type { DatabaseHandle } from './platform/db.js';
import { type App, installAuth, installErrorHandling, installValidation, maxBodyBytes } from './platform/http.js';
import { newId } from './platform/ids.js';
import { answerClientError, answerFrameworkError, installInputChecks } from './platform/input.js';
import { queueStats } from './platform/jobs.js';
import { installMetrics, type ReadJobQueue } from './platform/metrics.js';
import { isReady } from './platform/migrate.js';
import { installOperationIds, openApiOptions } from './platform/openapi.js';
import { ErrorBody } from './platform/schemas.js';
import { programRoutes } from './programs/routes.js';
import { reconciliationRoutes } from './reconciliation/routes.js';
import { recordRoutes } from './record/routes.js';
import { spendRoutes } from './spend/routes.js';
import { taskRoutes } from './tasks/routes.js';
import { userRoutes } from './users/routes.js';
import { userTaskRoutes } from './usertasks/routes.js';
import { webhookEndpointRoutes } from './webhooks/routes.js';

export const apiVersion = '2026-11-25';

/**
 * While the app drains (after `close()` began), how often connections that went idle are closed,
 * in milliseconds. Node closes the idle ones once when the server stops listening; a keep-alive
 * connection whose response was already on its way then would otherwise linger until its client
 * or the keep-alive timeout (72 s) ends it, and hold up the shutdown.
 */
const drainIdleSweepIntervalMs = 100;

/**
 * Fields no log line may carry, wherever a future log call would put them: an SSN passes through
 * to Highnote only, and API keys are secrets. Nothing logs request bodies today; this holds if
 * something does.
 */
export const secretLogPaths = {
  paths: [
    'ssn',
    '*.ssn',
    '*.*.ssn',
    'apiKey',
    '*.apiKey',
    '*.*.apiKey',
    'secret',
    '*.secret',
    'clientSecret',
    '*.clientSecret',
    'encodedClientSecret',
    '*.encodedClientSecret',
    'encodedPrivateKey',
    '*.encodedPrivateKey',
    'clientPassword',
    '*.clientPassword',
    'accessToken',
    '*.accessToken',
    'refreshToken',
    '*.refreshToken',
    'req.headers.authorization',
    'req.headers["refresh-token"]',
  ],
  censor: '[redacted]',
};

/** Builds the HTTP application on an open database; the caller listens and closes. */
export async function buildApp(
  config: Pick<Config, 'adminToken' | 'logLevel'> & Partial<Pick<Config, 'rateLimitPerSecond' | 'rateLimitBurst'>>,
  database: DatabaseHandle,
  options: {
    logger?: FastifyServerOptions['logger'];
    /** Reads the job queue for the metrics gauges; defaults to the `jobs` table of `database`. */
    readJobQueue?: ReadJobQueue;
    /** Where organizations reach Highnote; shared with the worker's jobs. */
    issuers?: Issuers;
    /** Seals partner webhook secrets (TRANCHE_ENCRYPTION_KEY); without it endpoints cannot be created. */
    encryptionKey?: Buffer;
  } = {},
): Promise<App> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, redact: secretLogPaths },
    // Graceful close: stop listening, close idle keep-alive connections, let requests in flight
    // finish. A request that still arrives on an open connection is served (with
    // `Connection: close`) rather than answered with Fastify's own 503, whose body is not our
    // error envelope; the database stays open until the server has closed.
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    bodyLimit: maxBodyBytes,
    genReqId: () => newId('request'),
    // A request Node's parser refuses (a NUL in a header) still gets our error envelope.
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    ajv: { customOptions: { coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as App;

  const { db } = database;
  // JSON only: without these parsers a text body is answered with 415 unsupported_media_type.
  app.removeContentTypeParser(['text/plain']);
  // A mutating request may carry no body at all (PUT …/complete); validate it as an empty object.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method !== 'GET' && request.method !== 'HEAD') request.body = {};
  });
  installValidation(app);
  installInputChecks(app);
  installErrorHandling(app);
  installDrain(app);
  installMetrics(app, { readJobQueue: options.readJobQueue ?? (() => queueStats(db, new Date())) });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  installAuth(app, { db, adminToken: config.adminToken });
  app.addSchema(ErrorBody);

  // Before any route: every documented route gets its operationId, or the server does not start.
  installOperationIds(app);
  await app.register(swagger, openApiOptions(apiVersion));
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const ready = await isReady(db);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', database: database.kind });
  });

  const issuers = options.issuers ?? new Issuers(db, {});
  organizationRoutes(app, { db });
  configurationRoutes(app, { db, issuers });
  programRoutes(app, { db });
  userRoutes(app, { db, issuers });
  enrollmentRoutes(app, { db });
  taskRoutes(app, { db });
  userTaskRoutes(app, { db });
  disbursementRoutes(app, { db });
  cardRoutes(app, { db, issuers });
  eventRoutes(app, { db });
  jobRoutes(app, { db });
  notificationRoutes(app, { db, issuers });
  notificationTargetRoutes(app, { db, issuers });
  webhookEndpointRoutes(app, { db, encryptionKey: options.encryptionKey });
  spendRoutes(app, { db });
  reconciliationRoutes(app, { db });
  agreementRoutes(app, { db });
  credentialRoutes(app, { db, encryptionKey: options.encryptionKey, limits: config });
  recordRoutes(app, { db });
  auditRoutes(app, { db });
  await app.ready();
  return app;
}

/**
 * Once `close()` began, every response ends its connection, and connections that went idle are
 * closed until the server has none left, so that a drain takes as long as the slowest request
 * in flight and no longer.
 */
function installDrain(app: App): void {
  let draining = false;
  let sweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    draining = true;
    sweep = setInterval(() => app.server.closeIdleConnections(), drainIdleSweepIntervalMs);
    sweep.unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(sweep);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('Connection', 'close');
  });
}
