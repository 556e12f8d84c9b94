import { Migration } from '@mikro-orm/migrations';

/**
 * Who holds a webhook message's lease: the delivery worker's batch that claimed it sets a token of its own with
 * the lease (next_attempt_at), and clears both only if the token is still its own when it records the attempt
 * — a sender whose lease ran out and was taken over changes nothing. A message with a token and a lease still
 * running is in flight: Resend refuses it then, so that it is never sent twice at once.
 */
export class Migration20261206020000_webhook_lease_token extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table webhook_message add column lease_token varchar(32) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table webhook_message drop column lease_token;`);
  }
}
