import { Migration } from '@mikro-orm/migrations';

/**
 * A device has one IMEI: within an enterprise, no two endpoints share one (issue 12, item 5). The domain
 * checks it first and names the endpoint that has it; this partial unique index is what stops two
 * concurrent creates with the same IMEI from both committing. Endpoints without an IMEI are not indexed.
 * Per enterprise, not global: tenants are separate, and one enterprise's data must not reveal another's.
 */
export class Migration20261203100000_unique_imei extends Migration {
  override async up(): Promise<void> {
    // A database that already has two endpoints with one IMEI cannot take the index: say which, and how to fix it.
    this.addSql(`
do $$
declare
  dup record;
begin
  select enterprise_id, imei, string_agg(id::text, ', ' order by id) as ids into dup
  from endpoint where imei is not null group by enterprise_id, imei having count(*) > 1 limit 1;
  if found then
    raise exception 'endpoints % (enterprise %) share IMEI %, but a device has one IMEI: correct the IMEI of all but one of them (or set it to null), then start SIM Link again', dup.ids, dup.enterprise_id, dup.imei;
  end if;
end;
$$;
create unique index endpoint_imei_unique on endpoint (enterprise_id, imei) where imei is not null;
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
drop index if exists endpoint_imei_unique;
`);
  }
}
