import { Migration } from '@mikro-orm/migrations';

/**
 * The rows of a bulk change's file that the preview refused, each with its reason, kept with the job so that
 * Download the results (CSV) lists every row of the file: the ones done or failed, and the ones that could not
 * be done at all. The values as the file had them (they may be no endpoint id or action at all).
 */
export class Migration20261206040000_bulk_job_problems extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table bulk_job_problem (
  job_id integer not null,
  line integer not null,
  endpoint_id varchar(40) not null,
  action varchar(40) not null,
  iccid varchar(40) not null,
  reason varchar(500) not null,
  constraint bulk_job_problem_pkey primary key (job_id, line),
  constraint bulk_job_problem_job_id_fkey foreign key (job_id) references bulk_job (id) on delete cascade
);
`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table bulk_job_problem;`);
  }
}
