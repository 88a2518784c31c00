/**
 * The engine's event runner: feeds events into the pure state machine
 * (engine_state.ts) strictly one at a time and performs the effects each
 * transition returns, in order, before the next event. Effects that learn
 * something enqueue follow-up events instead of dispatching recursively, so
 * a transition never runs inside another one.
 */
import { logger } from "../../log.ts";
import {
  type Effect,
  type EngineEvent,
  type EngineState,
  transition as machine,
  type TransitionResult,
} from "../engine_state.ts";

const log = logger("connector.engine");

/** What the runner calls around each accepted transition. */
export interface RunnerHooks {
  /** Runs after the state changed, before its effects. */
  onTransition(from: EngineState, to: EngineState, event: EngineEvent): void;
  /** Performs one effect; a failure is logged and the next effect still runs. */
  perform(effect: Effect): Promise<void>;
  /** The machine; default the real one (tests may drive a smaller one). */
  transition?: (s: EngineState, e: EngineEvent) => TransitionResult;
}

const STOPPED: TransitionResult = {
  ok: false,
  reason: "Cannot handle events: the engine is stopped",
};

/** Serialises events through the machine and performs their effects. */
export class EventRunner {
  readonly #hooks: RunnerHooks;
  readonly #transition: (s: EngineState, e: EngineEvent) => TransitionResult;
  #state: EngineState;
  #queue: { event: EngineEvent; resolve: (r: TransitionResult) => void }[] = [];
  #processing = false;
  #stopped = false;

  constructor(initial: EngineState, hooks: RunnerHooks) {
    this.#state = initial;
    this.#hooks = hooks;
    this.#transition = hooks.transition ?? machine;
  }

  /** The current state. */
  get state(): EngineState {
    return this.#state;
  }

  /** True once stopped: events are refused. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Replaces the state before any event ran (start-up: the strict setting is known late). */
  reset(state: EngineState): void {
    this.#state = state;
  }

  /** Feeds one event; resolves with the transition once it and its effects ran. */
  dispatch(event: EngineEvent): Promise<TransitionResult> {
    return new Promise((resolve) => {
      if (this.#stopped) {
        resolve(STOPPED);
        return;
      }
      this.#queue.push({ event, resolve });
      void this.#process();
    });
  }

  /** Queues an event without waiting for it. */
  enqueue(event: EngineEvent): void {
    void this.dispatch(event);
  }

  /** Refuses every queued and later event. */
  stop(): void {
    this.#stopped = true;
    for (const q of this.#queue.splice(0)) q.resolve(STOPPED);
  }

  async #process(): Promise<void> {
    if (this.#processing) return;
    this.#processing = true;
    try {
      while (this.#queue.length && !this.#stopped) {
        const { event, resolve } = this.#queue.shift()!;
        const before = this.#state;
        const r = this.#transition(before, event);
        if (!r.ok) {
          log.debug("Ignored event", { event: event.type, state: before.kind, reason: r.reason });
          resolve(r);
          continue;
        }
        this.#state = r.state;
        this.#hooks.onTransition(before, r.state, event);
        for (const eff of r.effects) {
          try {
            await this.#hooks.perform(eff);
          } catch (err) {
            log.error("Effect failed", { effect: eff.type, error: (err as Error).message });
          }
        }
        resolve(r);
      }
    } finally {
      this.#processing = false;
    }
  }
}
