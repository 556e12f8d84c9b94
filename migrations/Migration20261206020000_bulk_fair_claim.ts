import { Migration } from '@mikro-orm/migrations';

/**
 * Bulk jobs are claimed a round at a time, round-robin across enterprises (src/domain/bulk.ts): `served_at` is
 * when a runner last took the job for a round; an enterprise's last-served time is the latest of its jobs'.
 */
export class Migration20261206020000_bulk_fair_claim extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table bulk_job add column served_at timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table bulk_job drop column served_at;`);
  }
}
