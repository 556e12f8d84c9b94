import { Migration } from '@mikro-orm/migrations';

/**
 * Bulk changes (SPEC.md §7, issue 17): a job per uploaded file, its rows with their outcomes, and the event
 * `bulk.completed` written when a job ends. Deleting a job deletes its rows.
 */
export class Migration20261204200000_bulk extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table bulk_job (
  id serial primary key,
  enterprise_id int not null references enterprise (id),
  created_by int not null,
  created_by_name varchar(200) not null,
  file_name varchar(255) not null,
  state varchar(12) not null check (state in ('queued', 'running', 'done', 'cancelled')),
  total int not null,
  done int not null default 0,
  failed int not null default 0,
  cancel_requested boolean not null default false,
  lease_until timestamptz null,
  started_at timestamptz null,
  finished_at timestamptz null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index bulk_job_enterprise_idx on bulk_job (enterprise_id, id desc);
create index bulk_job_pending_idx on bulk_job (id) where state in ('queued', 'running');

create table bulk_job_row (
  id bigserial primary key,
  job_id int not null references bulk_job (id) on delete cascade,
  line int not null,
  endpoint_id int not null,
  action varchar(12) not null check (action in ('link', 'delink', 'swap', 'activate', 'suspend', 'resume')),
  iccid varchar(20) null,
  sim_id int null,
  outcome varchar(10) null,
  message varchar(500) null
);
create index bulk_job_row_job_idx on bulk_job_row (job_id, line);

alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported', 'sims.import_refused', 'sim.swapped',
  'bulk.completed'));
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
alter table event drop constraint event_action_check;
alter table event add constraint event_action_check check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
  'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported', 'sims.import_refused', 'sim.swapped'));
drop table if exists bulk_job_row;
drop table if exists bulk_job;
`);
  }
}
