import { Migration } from '@mikro-orm/migrations';

/**
 * Webhooks (SPEC.md §6, issue 16): the receivers an enterprise registers, the outbox of messages written in the
 * transaction of each change, and the log of every attempt to deliver them. Deleting a webhook deletes its
 * messages and their attempts. `next_attempt_at` is set while a message waits to be sent (the worker's queue,
 * webhook_message_due_idx) and cleared once it is delivered or given up.
 */
export class Migration20261204180000_webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table webhook (
  id serial primary key,
  enterprise_id int not null,
  url varchar(2000) not null,
  event_types text[] not null,
  secret varchar(100) not null,
  enabled boolean not null default true,
  disabled_reason varchar(500) null,
  failing_since timestamptz null,
  created_by int null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_enterprise_idx on webhook (enterprise_id);
alter table webhook add constraint webhook_enterprise_id_fkey foreign key (enterprise_id) references enterprise (id);

create table webhook_message (
  id bigserial primary key,
  webhook_id int not null,
  message_id varchar(40) not null,
  event_type varchar(40) not null,
  payload jsonb not null,
  attempts int not null default 0,
  next_attempt_at timestamptz null,
  delivered_at timestamptz null,
  failed_at timestamptz null,
  created_at timestamptz not null default now()
);
alter table webhook_message add constraint webhook_message_message_id_key unique (message_id);
alter table webhook_message add constraint webhook_message_webhook_id_fkey foreign key (webhook_id) references webhook (id) on delete cascade;
create index webhook_message_due_idx on webhook_message (next_attempt_at) where next_attempt_at is not null;
create index webhook_message_webhook_idx on webhook_message (webhook_id, id desc);

create table webhook_attempt (
  id bigserial primary key,
  message_id bigint not null,
  webhook_id int not null,
  attempted_at timestamptz not null default now(),
  duration_ms int not null,
  status int null,
  error varchar(500) null,
  response_start text null
);
alter table webhook_attempt add constraint webhook_attempt_message_id_fkey foreign key (message_id) references webhook_message (id) on delete cascade;
create index webhook_attempt_webhook_idx on webhook_attempt (webhook_id, id desc);
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
drop table if exists webhook_attempt;
drop table if exists webhook_message;
drop table if exists webhook;
`);
  }
}
