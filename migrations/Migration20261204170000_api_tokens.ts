import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 15: the JSON API v1.
 *  - API tokens: a token acts for its enterprise with its role. Only the SHA-256 of the token is stored
 *    (the token itself is shown once); revoked tokens stay listed (revoked_at), so the trail can name them.
 *  - The audit trail says where each change came from (SPEC §1, Event.source): `ui`, `crm`, `api`,
 *    `import`, `bulk`. Events written before this migration came from the screens or an import.
 */
export class Migration20261204170000_api_tokens extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table api_token (
  id serial primary key,
  enterprise_id int not null references enterprise (id),
  name varchar(100) not null check (length(btrim(name)) between 1 and 100),
  role varchar(10) not null check (role in ('admin', 'viewer')),
  token_hash varchar(64) not null,
  created_by_id int references app_user (id) on delete set null,
  created_by_name varchar(200) not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  constraint api_token_token_hash_key unique (token_hash)
);
create index api_token_enterprise_idx on api_token (enterprise_id, id);

alter table event add column source varchar(10) not null default 'ui';
-- The trail is append-only (event_append_only); this one backfill of the new column is the migration's, not the app's.
alter table event disable trigger event_append_only;
update event set source = 'import' where action in ('sims.imported', 'sims.import_refused');
alter table event enable trigger event_append_only;
alter table event add constraint event_source_check check (source in ('ui', 'crm', 'api', 'import', 'bulk'));
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
alter table event drop constraint event_source_check;
alter table event drop column source;
drop table if exists api_token;
`);
  }
}
