import { Migration } from '@mikro-orm/migrations';

/**
 * A bulk change is stored as a draft when its file has been checked (the preview), and queued only when an
 * admin confirms it (Apply N changes → Yes); the runner never takes a draft.
 */
export class Migration20261204210000_bulk_drafts extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
alter table bulk_job drop constraint bulk_job_state_check;
alter table bulk_job add constraint bulk_job_state_check check (state in ('draft', 'queued', 'running', 'done', 'cancelled'));
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
delete from bulk_job where state = 'draft';
alter table bulk_job drop constraint bulk_job_state_check;
alter table bulk_job add constraint bulk_job_state_check check (state in ('queued', 'running', 'done', 'cancelled'));
`);
  }
}
