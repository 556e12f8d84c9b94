import { Migration } from '@mikro-orm/migrations';

/**
 * The SIM import's staging tables (src/domain/sim-import.ts): the rows of a file being imported (their valid
 * identifiers) and the problems found in it, each keyed by the import (a uuid made per import) first. They
 * were temporary tables of the import's transaction; as tables of the schema they have entities, so the
 * staging is written through MikroORM. UNLOGGED: their rows live only inside the import's own transaction
 * (deleted before it commits, rolled back with it), so they need no WAL and nothing of them must survive a
 * crash. No foreign key: a staged row is not yet anything the rest of the schema knows.
 */
export class Migration20261205120000_import_staging extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create unlogged table import_row (
  import_id uuid not null,
  line integer not null,
  iccid text null,
  imsi text null,
  eid text null,
  msisdn text null,
  ok boolean not null,
  constraint import_row_pkey primary key (import_id, line)
);
create unlogged table import_problem (
  import_id uuid not null,
  id integer not null,
  line integer not null,
  field_order smallint not null,
  field text not null,
  message text not null,
  constraint import_problem_pkey primary key (import_id, id)
);
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
drop table import_problem;
drop table import_row;
`);
  }
}
