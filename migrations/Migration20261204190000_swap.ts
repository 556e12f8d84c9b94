import { Migration } from '@mikro-orm/migrations';

/**
 * Swap SIM (SPEC.md §1, issue 17): the event `sim.swapped` records both ICCIDs — the new one in sim_iccid,
 * the one it replaced in old_sim_iccid.
 */
export class Migration20261204190000_swap extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
alter table event add column old_sim_iccid varchar(20);
alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported', 'sims.import_refused', 'sim.swapped'));
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported', 'sims.import_refused'));
alter table event drop column old_sim_iccid;
`);
  }
}
