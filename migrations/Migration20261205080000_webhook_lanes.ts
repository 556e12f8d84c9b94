import { Migration } from '@mikro-orm/migrations';

/**
 * The endpoint a webhook message is about (null for an import, a bulk job's end or a test event), so that the
 * delivery worker can keep each endpoint's messages in order while it sends different endpoints' side by side:
 * a message is sent only when no earlier message of its lane (its webhook and endpoint) is still pending —
 * webhook_message_lane_idx answers that question for each due message. No foreign key: the column orders
 * messages, it is not a relation the app follows. Existing messages take it from their payload.
 */
export class Migration20261205080000_webhook_lanes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
alter table webhook_message add column endpoint_id integer null;
update webhook_message set endpoint_id = (payload -> 'data' ->> 'endpoint_id')::integer
  where jsonb_typeof(payload -> 'data' -> 'endpoint_id') = 'number';
create index webhook_message_lane_idx on webhook_message (webhook_id, coalesce(endpoint_id, 0), id) where next_attempt_at is not null;
`);
  }

  override async down(): Promise<void> {
    this.addSql(`
drop index webhook_message_lane_idx;
alter table webhook_message drop column endpoint_id;
`);
  }
}
