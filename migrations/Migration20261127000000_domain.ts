import { Migration } from '@mikro-orm/migrations';

/**
 * The whole domain (docs/lifecycle.md, docs/invariants.md), with every invariant the database can keep:
 *  1. one SIM per endpoint and one endpoint per SIM      → unique (endpoint.sim_id), unique (sim.endpoint_id)
 *  2. endpoint Hold ⇔ no SIM                             → check endpoint_hold_iff_no_sim
 *  3. SIM Ready to Activate ⇔ no endpoint                → check sim_ready_iff_no_endpoint
 *  4. a linked SIM has its endpoint's status             → the two composite foreign keys below include status
 *  5. endpoint and SIM in the same enterprise            → … and enterprise_id
 * The composite keys also make the link symmetric (endpoint.sim_id = s ⇔ sim.endpoint_id = e). They are
 * deferred to commit, so one transaction can update both rows in either order.
 * Identifier columns use the C collation so a btree answers prefix searches (LIKE '8944%').
 */
export class Migration20261127000000_domain extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table enterprise (
  id serial primary key,
  slug varchar(60) not null unique check (slug ~ '^[a-z0-9][a-z0-9-]*$'),
  name varchar(200) not null check (length(btrim(name)) > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table app_user (
  id serial primary key,
  enterprise_id int not null references enterprise (id),
  email varchar(254) not null unique check (email = lower(email) and email like '%_@_%'),
  display_name varchar(200) not null,
  role varchar(10) not null check (role in ('admin', 'viewer')),
  password_hash varchar(300),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index app_user_enterprise_idx on app_user (enterprise_id);

create table endpoint (
  id serial primary key,
  enterprise_id int not null references enterprise (id),
  name varchar(100) not null check (length(btrim(name)) between 1 and 100),
  imei varchar(15) collate "C" check (imei ~ '^[0-9]{15}$'),
  activate_immediately boolean not null default false,
  status varchar(12) not null default 'hold' check (status in ('hold', 'pre_active', 'active', 'suspended')),
  sim_id int,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint endpoint_sim_id_unique unique (sim_id),
  constraint endpoint_hold_iff_no_sim check ((status = 'hold') = (sim_id is null)),
  constraint endpoint_link_key unique (id, sim_id, enterprise_id, status)
);
create index endpoint_list_idx on endpoint (enterprise_id, name, id);
create index endpoint_status_list_idx on endpoint (enterprise_id, status, name, id);
create index endpoint_name_prefix_idx on endpoint (enterprise_id, lower(name) text_pattern_ops);

create table sim (
  id serial primary key,
  enterprise_id int not null references enterprise (id),
  iccid varchar(20) collate "C" not null check (iccid ~ '^89[0-9]{17,18}$'),
  imsi varchar(15) collate "C" not null check (imsi ~ '^[0-9]{15}$'),
  eid varchar(32) collate "C" check (eid ~ '^[0-9]{32}$'),
  msisdn varchar(15) collate "C" check (msisdn ~ '^[0-9]{5,15}$'),
  status varchar(12) not null default 'ready' check (status in ('ready', 'pre_active', 'active', 'suspended')),
  endpoint_id int,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint sim_iccid_unique unique (iccid),
  constraint sim_imsi_unique unique (imsi),
  constraint sim_eid_unique unique (eid),
  constraint sim_endpoint_id_unique unique (endpoint_id),
  constraint sim_ready_iff_no_endpoint check ((status = 'ready') = (endpoint_id is null)),
  constraint sim_link_key unique (id, endpoint_id, enterprise_id, status)
);
-- The SIM picker: Ready to Activate SIMs of one enterprise in ICCID order (keyset), and prefix search.
create index sim_ready_iccid_idx on sim (enterprise_id, iccid) where status = 'ready';
create index sim_ready_imsi_idx on sim (enterprise_id, imsi) where status = 'ready';
create index sim_ready_eid_idx on sim (enterprise_id, eid) where status = 'ready' and eid is not null;
-- The inventory: all SIMs of one enterprise in ICCID order, optionally of one status.
create index sim_list_idx on sim (enterprise_id, iccid);
create index sim_status_list_idx on sim (enterprise_id, status, iccid);

alter table endpoint add constraint endpoint_sim_link_fk
  foreign key (sim_id, id, enterprise_id, status) references sim (id, endpoint_id, enterprise_id, status)
  deferrable initially deferred;
alter table sim add constraint sim_endpoint_link_fk
  foreign key (endpoint_id, id, enterprise_id, status) references endpoint (id, sim_id, enterprise_id, status)
  deferrable initially deferred;

create table event (
  id bigserial primary key,
  enterprise_id int not null references enterprise (id),
  actor_id int,
  actor_name varchar(200) not null,
  action varchar(40) not null check (action in ('endpoint.created', 'sim.linked', 'sim.delinked',
    'endpoint.activated', 'endpoint.suspended', 'endpoint.resumed', 'sims.imported')),
  endpoint_id int references endpoint (id),
  endpoint_name varchar(100),
  sim_iccid varchar(20),
  endpoint_status_before varchar(20),
  endpoint_status_after varchar(20),
  sim_status_before varchar(20),
  sim_status_after varchar(20),
  count int,
  request_id varchar(100),
  created_at timestamptz not null default now()
);
create index event_enterprise_idx on event (enterprise_id, id desc);
create index event_action_idx on event (enterprise_id, action, id desc);
create index event_endpoint_idx on event (endpoint_id, id desc) where endpoint_id is not null;

-- The audit trail is append-only: the app never updates or deletes an event, and the database refuses to.
create function event_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'the audit trail is append-only: % on event is not allowed', tg_op;
end;
$$;
create trigger event_append_only before update or delete on event
  for each row execute function event_append_only();

-- Server-side sessions: the cookie holds a random id; the row here makes it valid (and revocable).
create table session (
  id varchar(128) primary key,
  user_id int references app_user (id) on delete cascade,
  data jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index session_expires_idx on session (expires_at);
create index session_user_idx on session (user_id);

-- One-time keys of confirmation forms: a replayed or double-clicked form is answered with the first outcome.
create table operation_key (
  key varchar(64) primary key,
  enterprise_id int not null references enterprise (id),
  user_id int not null,
  action varchar(40) not null,
  outcome jsonb not null,
  created_at timestamptz not null default now()
);
create index operation_key_created_idx on operation_key (created_at);

-- Launch tokens from the CRM are single-use: each jti is remembered until its token expires.
create table launch_token_use (
  jti varchar(200) primary key,
  expires_at timestamptz not null,
  used_at timestamptz not null default now()
);
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
drop table if exists launch_token_use;
drop table if exists operation_key;
drop table if exists session;
drop trigger if exists event_append_only on event;
drop function if exists event_append_only();
drop table if exists event;
alter table sim drop constraint if exists sim_endpoint_link_fk;
alter table endpoint drop constraint if exists endpoint_sim_link_fk;
drop table if exists sim;
drop table if exists endpoint;
drop table if exists app_user;
drop table if exists enterprise;
`);
  }
}
