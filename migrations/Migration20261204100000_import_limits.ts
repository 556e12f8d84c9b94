import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 12, items 10 and 12.
 *  - Rate-limit counters live in PostgreSQL, so every instance counts against the same limit and a restart
 *    keeps it: one row per limit and key, with the end of its window (expired rows are pruned by the app).
 *  - A refused import (a file with problems) leaves an audit event, `sims.import_refused`, with its counts:
 *    `count` is the rows checked, the new `problem_count` the problems found. Each such file was looked up
 *    in the whole database, so the trail shows who probed how many identifiers, and the events count the
 *    refusals that the per-enterprise limit allows in an hour.
 */
export class Migration20261204100000_import_limits extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table rate_limit_counter (
  key text primary key,
  count int not null,
  reset_at timestamptz not null
);
create index rate_limit_counter_reset_idx on rate_limit_counter (reset_at);

alter table event add column problem_count int;
alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported', 'sims.import_refused'));
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported'));
alter table event drop column problem_count;
drop table if exists rate_limit_counter;
`);
  }
}
