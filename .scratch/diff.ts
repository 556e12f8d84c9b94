import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig } from '../src/db/mikro-orm.config.js';
const url = process.env.URL ?? 'postgresql://postgres@127.0.0.1:5432/uow_diff';
const orm = await MikroORM.init({ ...ormConfig({ clientUrl: url }), debug: process.env.DBG ? ['schema'] : false });
try {
  await orm.getMigrator().up();
  const sql = await orm.schema.getUpdateSchemaSQL({ wrap: false });
  console.log(sql || '(empty)');
} finally { await orm.close(); }
