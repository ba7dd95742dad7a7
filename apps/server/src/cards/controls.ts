import type { Issuers } from '../configurations/service.js';
import { type AttachedRule, syncCardSpendRules } from '../issuer/spend-rules.js';
import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import { defineJob, enqueueJobs, type JobRequest } from '../platform/jobs.js';
import {
  combineSpendControls,
  type SpendControls,
  spendControlsDigest,
  spendControlsFromStorage,
} from '../programs/spend-controls.js';

/**
 * Keeping a card's Highnote rules in step with its holder's programs. A participant has one card
 * per card product, and may be in several programs; the card carries the most restrictive
 * combination of the spend controls of every program they are actively enrolled in
 * (`combineSpendControls`). The rules are brought in step when the card is issued, when a
 * program's controls change, and before every funding transfer, so money from a program never
 * lands on a card that lacks that program's controls. A card whose digest already matches makes
 * no call.
 */

/** The combined controls of the programs a participant is actively enrolled in. */
export async function controlsForParticipant(db: Db, organizationId: string, userId: string): Promise<SpendControls> {
  const rows = await db
    .selectFrom('enrollments as e')
    .innerJoin('programs as p', (join) =>
      join.onRef('p.organization_id', '=', 'e.organization_id').onRef('p.id', '=', 'e.program_id'),
    )
    .select(['p.id', 'p.spend_controls'])
    .where('e.organization_id', '=', organizationId)
    .where('e.user_id', '=', userId)
    .where('e.status', '=', 'active')
    .where('p.status', '<>', 'closed')
    .execute();
  return combineSpendControls(rows.map((row) => spendControlsFromStorage(row.spend_controls, `program ${row.id}`)));
}

export class CardControlsNotSynced extends Error {}

/**
 * Brings one card's rules in step with its holder's programs; throws `CardControlsNotSynced` when
 * Highnote could not be brought along (the caller's job retries).
 */
export async function syncCardControls(
  db: Db,
  issuers: Issuers,
  organizationId: string,
  cardId: string,
): Promise<void> {
  const card = await db
    .selectFrom('cards')
    .select(['user_id', 'highnote_payment_card_id', 'spend_rules', 'spend_controls_digest', 'status'])
    .where('organization_id', '=', organizationId)
    .where('id', '=', cardId)
    .executeTakeFirst();
  if (card === undefined || card.status === 'closed') return;
  const controls = await controlsForParticipant(db, organizationId, card.user_id);
  const digest = spendControlsDigest(controls);
  if (digest === card.spend_controls_digest) return;
  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) throw new CardControlsNotSynced(issuer.failure.message);
  const synced = await syncCardSpendRules(
    issuer.value.connection,
    { paymentCardId: card.highnote_payment_card_id, attached: card.spend_rules as AttachedRule[] },
    controls,
  );
  if (!synced.ok) throw new CardControlsNotSynced(`card ${cardId}: ${synced.failure.message}`);
  // Guarded by the digest read above: a sync for newer controls that finished first is not undone.
  await db
    .updateTable('cards')
    // Not updated_at: the rules are not part of the card as the API presents it.
    .set({ spend_rules: JSON.stringify(synced.value), spend_controls_digest: digest })
    .where('organization_id', '=', organizationId)
    .where('id', '=', cardId)
    .where((eb) =>
      card.spend_controls_digest === null
        ? eb('spend_controls_digest', 'is', null)
        : eb('spend_controls_digest', '=', card.spend_controls_digest),
    )
    .execute();
}

export const syncCardControlsJobName = 'cards.sync_controls';
export const syncProgramCardsJobName = 'programs.sync_card_controls';
const syncMaxAttempts = 30;
/** Cards re-synced per program job run before it enqueues the rest. */
export const programCardSyncBatch = 500;

export function syncCardControlsRequest(cardId: string): JobRequest {
  return {
    name: syncCardControlsJobName,
    payload: { cardId },
    maxAttempts: syncMaxAttempts,
    dedupeKey: `${syncCardControlsJobName}:${cardId}`,
  };
}

export function syncProgramCardsRequest(programId: string): JobRequest {
  return {
    name: syncProgramCardsJobName,
    payload: { programId },
    maxAttempts: syncMaxAttempts,
    dedupeKey: `${syncProgramCardsJobName}:${programId}`,
  };
}

export function cardControlJobs(deps: { issuers: Issuers }) {
  const limits = { maxAttempts: syncMaxAttempts, backoff: { baseMs: 500, maxMs: 60_000 }, visibilityTimeoutMs: 60_000 };
  return [
    defineJob<{ cardId: string }>({
      name: syncCardControlsJobName,
      ...limits,
      run: async (context, payload) => {
        assert(context.job.organizationId !== null, 'a card belongs to an organization');
        await syncCardControls(context.db, deps.issuers, context.job.organizationId, payload.cardId);
      },
    }),
    defineJob<{ programId: string }>({
      name: syncProgramCardsJobName,
      ...limits,
      // One job per card of the program's participants, each deduplicated by the card.
      run: async (context, payload) => {
        const organizationId = context.job.organizationId;
        assert(organizationId !== null, 'a program belongs to an organization');
        const cards = await context.db
          .selectFrom('cards as c')
          .innerJoin('enrollments as e', (join) =>
            join.onRef('e.organization_id', '=', 'c.organization_id').onRef('e.user_id', '=', 'c.user_id'),
          )
          .select('c.id')
          .where('c.organization_id', '=', organizationId)
          .where('e.program_id', '=', payload.programId)
          .where('c.status', '<>', 'closed')
          .execute();
        for (let start = 0; start < cards.length; start += programCardSyncBatch) {
          const requests = cards
            .slice(start, start + programCardSyncBatch)
            .map((card) => ({ ...syncCardControlsRequest(card.id), organizationId }));
          await enqueueJobs(context.db, requests, context.now);
        }
      },
    }),
  ];
}
