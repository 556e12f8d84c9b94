import { Migration } from '@mikro-orm/migrations';

/**
 * When a webhook message was first attempted: the day after which a failing message is given up counts from
 * there (not from when it was written — a message that waited behind others, or for a disabled webhook, has had
 * no chance yet), and re-enabling the webhook or resending the message starts it again. Existing messages take
 * their first logged attempt.
 */
export class Migration20261206030000_webhook_first_attempt extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
alter table webhook_message add column first_attempted_at timestamptz null;
update webhook_message m set first_attempted_at = (select min(a.attempted_at) from webhook_attempt a where a.message_id = m.id)
  where m.attempts > 0;
`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table webhook_message drop column first_attempted_at;`);
  }
}
