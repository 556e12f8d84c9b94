import { Migration } from '@mikro-orm/migrations';

/**
 * A `bulk.completed` event names its job and how it ended (`done` or `cancelled`), so the History can say
 * "Bulk change finished" or "Bulk change cancelled" and link to the job's page. No foreign key: the trail
 * outlives what it names. Earlier bulk.completed events keep nulls (the trail is never updated).
 */
export class Migration20261206030000_bulk_completed_job extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table event add column bulk_job_id integer null, add column bulk_state varchar(12) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table event drop column bulk_job_id, drop column bulk_state;`);
  }
}
