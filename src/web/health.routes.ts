// Probes for a process manager or load balancer: /healthz (the process answers), /readyz (the database does).
import type { FastifyInstance } from 'fastify';

export async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', { config: { public: true } }, async (request, reply) =>
    reply.header('Cache-Control', 'no-store').send({ status: 'ok' }),
  );

  // Browsers ask for it on every page; there is no icon, and a 404 would only add noise to the logs.
  app.get('/favicon.ico', { config: { public: true } }, async (request, reply) =>
    reply.code(204).header('Cache-Control', 'max-age=86400').send(),
  );

  app.get('/readyz', { config: { public: true } }, async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    try {
      await Promise.race([
        request.em.getConnection().execute('select 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('database did not answer within 2 s')), 2000).unref()),
      ]);
      return reply.send({ status: 'ok', database: 'ok' });
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      return reply.code(503).send({ status: 'unavailable', database: (error as Error).message });
    }
  });
}
