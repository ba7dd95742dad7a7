import type { ClientRequest } from 'node:http';
import { envelopeBody, isSuccess, postNotification, signatureHeader, validSigningKeys } from './delivery.js';
import type { Scheduler } from './scheduler.js';
import {
  type JsonObject,
  MAX_STORED_NOTIFICATION_EVENTS,
  type NotificationEventRecord,
  type NotificationTargetRecord,
  newId,
  nowIso,
  type SandboxState,
} from './store.js';

/*
 * Records notification events and delivers them to the webhook targets subscribed to them.
 * A test can change how deliveries go out (POST /_sandbox/notifications) to exercise a receiver's
 * handling of duplicates, out-of-order arrival and loss.
 */

export const NOTIFICATION_MODES = ['normal', 'duplicate', 'reverse', 'drop'] as const;
export type NotificationMode = (typeof NOTIFICATION_MODES)[number];

export const ACTIVATION_EVENT_NAME = 'NOTIFICATION_ACTIVATION';
/** Highnote documents 30 days of event retention. */
const EVENT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

export interface DeliveryOptions {
  /** The waits before the 2nd, 3rd, … attempt; a delivery makes `length + 1` attempts at most. */
  retryDelaysMs: readonly number[];
  /** How long one attempt waits for the receiver's status line. */
  timeoutMs: number;
}

interface Delivery {
  targetId: string;
  event: Pick<NotificationEventRecord, 'id' | 'name' | 'createdAt' | 'node'>;
  replay: boolean;
  activation: boolean;
}

export interface NotifierDependencies {
  state: SandboxState;
  scheduler: Scheduler;
  delivery: DeliveryOptions;
  /** Called when a delivery outcome changed state (a target became ACTIVE). */
  onChange: () => void;
}

export class Notifier {
  readonly #deps: NotifierDependencies;
  readonly #inFlight = new Set<ClientRequest>();
  #mode: NotificationMode = 'normal';
  #held: Delivery[] = [];
  #holdMs: number | null = null;
  #flushPending = false;
  /** Bumped by reset and close, so a delivery chain started before them stops. */
  #generation = 0;

  constructor(deps: NotifierDependencies) {
    this.#deps = deps;
  }

  get mode(): NotificationMode {
    return this.#mode;
  }

  /** Records an event and sends it to every ACTIVE target subscribed to its name. */
  emit(name: string, node: JsonObject): NotificationEventRecord {
    const createdAt = nowIso();
    const event: NotificationEventRecord = {
      id: newId('ne'),
      name,
      createdAt,
      expiresAt: new Date(Date.parse(createdAt) + EVENT_RETENTION_MS).toISOString(),
      node,
    };
    const events = this.#deps.state.notificationEvents;
    events.set(event.id, event);
    for (const oldest of events.keys()) {
      if (events.size <= MAX_STORED_NOTIFICATION_EVENTS) break;
      events.delete(oldest);
    }
    for (const target of this.#subscribedTargets(name)) {
      this.#dispatch({ targetId: target.id, event, replay: false, activation: false });
    }
    return event;
  }

  /** Sends a stored event again, with `highnote-replay: true`, to the given or all subscribed targets. */
  replay(event: NotificationEventRecord, targetIds: readonly string[] | null): void {
    const targets =
      targetIds === null
        ? this.#subscribedTargets(event.name)
        : targetIds.flatMap((id) => this.#deps.state.notificationTargets.get(id) ?? []);
    for (const target of targets) this.#dispatch({ targetId: target.id, event, replay: true, activation: false });
  }

  /** Sends NOTIFICATION_ACTIVATION; a 2xx answer makes the (PENDING_VERIFICATION) target ACTIVE. */
  sendActivation(target: NotificationTargetRecord): void {
    const event = {
      id: newId('ne'),
      name: ACTIVATION_EVENT_NAME,
      createdAt: nowIso(),
      node: { __typename: 'NotificationTargetActivationEvent', ping: 'pong' },
    };
    // The handshake is not subject to the test modes: a target must be able to become ACTIVE.
    void this.#send({ targetId: target.id, event, replay: false, activation: true }, 1, this.#generation);
  }

  setMode(mode: NotificationMode, holdMs: number | null): void {
    this.#mode = mode;
    this.#holdMs = mode === 'reverse' ? holdMs : null;
    if (mode !== 'reverse') this.flush();
  }

  /** Sends every held delivery, newest first, each after the previous one's first attempt ends. */
  flush(): number {
    const held = this.#held.reverse();
    this.#held = [];
    this.#flushPending = false;
    const generation = this.#generation;
    void (async () => {
      for (const delivery of held) {
        if (generation !== this.#generation) return;
        await this.#send(delivery, 1, generation);
      }
    })();
    return held.length;
  }

  /** Back to `normal`, nothing held, open requests ended. Retry timers belong to the scheduler. */
  reset(): void {
    this.#generation += 1;
    this.#mode = 'normal';
    this.#held = [];
    this.#holdMs = null;
    this.#flushPending = false;
    for (const request of this.#inFlight) request.destroy();
    this.#inFlight.clear();
  }

  #subscribedTargets(name: string): NotificationTargetRecord[] {
    return [...this.#deps.state.notificationTargets.values()].filter(
      (target) => target.status === 'ACTIVE' && target.subscriptions.includes(name),
    );
  }

  #dispatch(delivery: Delivery): void {
    const generation = this.#generation;
    switch (this.#mode) {
      case 'drop':
        return;
      case 'duplicate':
        void this.#send(delivery, 1, generation);
        void this.#send(delivery, 1, generation);
        return;
      case 'reverse':
        this.#held.push(delivery);
        this.#scheduleHeldFlush();
        return;
      case 'normal':
        void this.#send(delivery, 1, generation);
    }
  }

  #scheduleHeldFlush(): void {
    if (this.#holdMs === null || this.#flushPending) return;
    this.#flushPending = true;
    this.#deps.scheduler.schedule(this.#holdMs, () => {
      if (this.#flushPending) this.flush();
    });
  }

  /** The target as it is now, if this delivery may still go to it. */
  #deliverableTarget(delivery: Delivery): NotificationTargetRecord | null {
    const target = this.#deps.state.notificationTargets.get(delivery.targetId);
    if (!target) return null;
    const wanted = delivery.activation ? 'PENDING_VERIFICATION' : 'ACTIVE';
    return target.status === wanted ? target : null;
  }

  /** One attempt; a failure schedules the next. Resolves when this attempt has its answer. */
  async #send(delivery: Delivery, attempt: number, generation: number): Promise<void> {
    const target = this.#deliverableTarget(delivery);
    if (!target || generation !== this.#generation) return;
    const body = envelopeBody(delivery.event);
    const status = await postNotification(target.uri, {
      body,
      signature: signatureHeader(body, validSigningKeys(target.signingKeys)),
      replay: delivery.replay,
      timeoutMs: this.#deps.delivery.timeoutMs,
      inFlight: this.#inFlight,
    });
    if (generation !== this.#generation) return;
    if (isSuccess(status)) {
      if (delivery.activation && this.#deliverableTarget(delivery) === target) {
        target.status = 'ACTIVE';
        target.updatedAt = nowIso();
        this.#deps.onChange();
      }
      return;
    }
    const delay = this.#deps.delivery.retryDelaysMs[attempt - 1];
    if (delay === undefined) return;
    this.#deps.scheduler.schedule(delay, () => void this.#send(delivery, attempt + 1, generation));
  }
}
