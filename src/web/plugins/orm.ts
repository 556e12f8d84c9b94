// Adds `app.orm` and, per request, `request.em`: a fresh MikroORM EntityManager (its own identity map),
// so no request ever sees another's entities. The global context stays disallowed.
import fp from 'fastify-plugin';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

declare module 'fastify' {
  interface FastifyInstance {
    orm: MikroORM;
  }
  interface FastifyRequest {
    em: EntityManager;
  }
}

export const ormPlugin = fp<{ orm: MikroORM }>(
  async (app, { orm }) => {
    app.decorate('orm', orm);
    app.decorateRequest('em', null as unknown as EntityManager);
    app.addHook('onRequest', async (request) => {
      request.em = orm.em.fork() as EntityManager;
    });
  },
  { name: 'orm' },
);
