/**
 * The edge selection policy as a table: each row runs a sequence of inputs
 * from a starting edge and says where the connector ends up, why, and which
 * edges it moved to on the way.
 */
import assert from "node:assert/strict";
import {
  decideSelection,
  initialSelection,
  type SelectionInput,
  type SelectionReason,
} from "../../src/policy/edge_selection.ts";

/** A measurement of the listed edges (an edge without a figure did not answer). */
const m = (rtt: Record<string, number | null>, listed = Object.keys(rtt)): SelectionInput => ({
  kind: "measured",
  listed,
  rtt: new Map(Object.entries(rtt)),
});
const live = (ok: boolean): SelectionInput => ({ kind: "liveness", ok });
const dead: SelectionInput = { kind: "current_failed" };

interface Row {
  name: string;
  start: string | null;
  inputs: SelectionInput[];
  /** Edge in use at the end. */
  current: string | null;
  /** Every move, in order. */
  moves: string[];
  /** Reason of the last decision. */
  reason: SelectionReason;
  /** The last decision's measuring advice, when it matters. */
  measure?: "now" | "soon" | "periodic";
}

const TABLE: Row[] = [
  {
    name: "nearest: the first measurement picks the nearest edge at once",
    start: null,
    inputs: [m({ a: 40, b: 12, c: 25 })],
    current: "b",
    moves: ["b"],
    reason: "initial",
  },
  {
    name: "nearest: the enrolment's edge is not left on one measurement",
    start: "a",
    inputs: [m({ a: 40, b: 35 })],
    current: "a",
    moves: [],
    reason: "confirming",
    measure: "soon",
  },
  {
    name: "nearest: the enrolment's edge is left for a nearer one once two measurements agree",
    start: "a",
    inputs: [m({ a: 40, b: 35 }), m({ a: 41, b: 36 })],
    current: "b",
    moves: ["b"],
    reason: "initial",
  },
  {
    name: "nearest: a first measurement slowed at start does not move the tunnel",
    start: "a",
    inputs: [m({ a: 90, b: 45 }), m({ a: 2, b: 45 })],
    current: "a",
    moves: [],
    reason: "stay",
    measure: "periodic",
  },
  {
    name: "nearest: two first measurements naming different edges start over",
    start: "a",
    inputs: [m({ a: 90, b: 45, c: 60 }), m({ a: 90, b: 70, c: 50 })],
    current: "a",
    moves: [],
    reason: "confirming",
  },
  {
    name: "nearest: a first choice confirmed ends the thresholds-free start",
    start: "a",
    inputs: [m({ a: 40, b: 35 }), m({ a: 40, b: 35 }), m({ a: 30, b: 35 })],
    current: "b",
    moves: ["b"],
    reason: "stay",
  },
  {
    name: "nearest: the enrolment's edge stays when it is the nearest",
    start: "a",
    inputs: [m({ a: 10, b: 35 })],
    current: "a",
    moves: [],
    reason: "stay",
  },
  {
    name: "hysteresis: 30 % and 10 ms nearer once is not enough",
    start: "a",
    inputs: [m({ a: 50, b: 60 }), m({ a: 50, b: 20 })],
    current: "a",
    moves: [],
    reason: "confirming",
    measure: "soon",
  },
  {
    name: "hysteresis: clearly nearer twice in a row moves",
    start: "a",
    inputs: [m({ a: 50, b: 60 }), m({ a: 50, b: 20 }), m({ a: 52, b: 21 })],
    current: "b",
    moves: ["b"],
    reason: "nearer",
  },
  {
    name: "hysteresis: 30 % but under 10 ms nearer never moves",
    start: "a",
    inputs: [m({ a: 20, b: 30 }), m({ a: 20, b: 12 }), m({ a: 20, b: 12 }), m({ a: 20, b: 12 })],
    current: "a",
    moves: [],
    reason: "stay",
  },
  {
    name: "hysteresis: 10 ms but under 30 % nearer never moves",
    start: "a",
    inputs: [m({ a: 100, b: 120 }), m({ a: 100, b: 80 }), m({ a: 100, b: 80 })],
    current: "a",
    moves: [],
    reason: "stay",
  },
  {
    name: "hysteresis: a measurement in between that is not clearly better starts over",
    start: "a",
    inputs: [m({ a: 50, b: 60 }), m({ a: 50, b: 20 }), m({ a: 50, b: 45 }), m({ a: 50, b: 20 })],
    current: "a",
    moves: [],
    reason: "confirming",
  },
  {
    name: "hysteresis: two different challengers do not add up",
    start: "a",
    inputs: [m({ a: 50, b: 60, c: 60 }), m({ a: 50, b: 20, c: 30 }), m({ a: 50, b: 40, c: 18 })],
    current: "a",
    moves: [],
    reason: "confirming",
  },
  {
    name: "failover: two failed liveness probes ask for a measurement now",
    start: "a",
    inputs: [m({ a: 10, b: 30 }), live(false), live(false)],
    current: "a",
    moves: [],
    reason: "suspect",
    measure: "now",
  },
  {
    name: "failover: one failed probe followed by a good one is forgiven",
    start: "a",
    inputs: [m({ a: 10, b: 30 }), live(false), live(true), m({ a: null, b: 30 })],
    current: "a",
    moves: [],
    reason: "stay",
    measure: "soon",
  },
  {
    name: "failover: after two failed probes a measurement without the current edge moves at once",
    start: "a",
    inputs: [m({ a: 10, b: 30, c: 50 }), live(false), live(false), m({ a: null, b: 30, c: 50 })],
    current: "b",
    moves: ["b"],
    reason: "failover",
  },
  {
    name: "failover: the tunnel saying the edge died moves on the next measurement, no hysteresis",
    start: "a",
    inputs: [m({ a: 10, b: 80 }), dead, m({ a: null, b: 80 })],
    current: "b",
    moves: ["b"],
    reason: "failover",
  },
  {
    name: "failover: the current edge still answering the measurement stays",
    start: "a",
    inputs: [m({ a: 10, b: 80 }), dead, m({ a: 11, b: 80 })],
    current: "a",
    moves: [],
    reason: "stay",
  },
  {
    name: "failover: when nobody answers the connector keeps its edge",
    start: "a",
    inputs: [m({ a: 10, b: 80 }), dead, m({ a: null, b: null })],
    current: "a",
    moves: [],
    reason: "unreachable",
  },
  {
    name: "unhealthy excluded: an unlisted edge is never chosen, however near",
    start: null,
    inputs: [m({ a: 5, b: 40, c: 60 }, ["b", "c"])],
    current: "b",
    moves: ["b"],
    reason: "initial",
  },
  {
    name: "unhealthy excluded: the current edge leaving the list is left at once",
    start: "a",
    inputs: [m({ a: 5, b: 40 }), m({ b: 40, c: 60 })],
    current: "b",
    moves: ["b"],
    reason: "unlisted",
  },
  {
    name: "unhealthy excluded: an unlisted edge cannot be a challenger",
    start: "a",
    inputs: [m({ a: 50, b: 10 }, ["a"]), m({ a: 50, b: 10 }, ["a"]), m({ a: 50, b: 10 }, ["a"])],
    current: "a",
    moves: [],
    reason: "stay",
  },
  {
    name: "return: the first edge coming back clearly nearer is taken back after two measurements",
    start: "a",
    inputs: [
      m({ a: 10, b: 80 }),
      dead,
      m({ a: null, b: 80 }, ["b"]),
      m({ a: 10, b: 80 }),
      m({ a: 11, b: 79 }),
    ],
    current: "a",
    moves: ["b", "a"],
    reason: "nearer",
  },
  {
    name: "return: after a failover the first edge is measured again soon while it is silent",
    start: "a",
    inputs: [m({ a: 10, b: 80 }), dead, m({ a: null, b: 80 }), m({ a: null, b: 80 })],
    current: "b",
    moves: ["b"],
    reason: "stay",
    measure: "soon",
  },
  {
    name: "return: a first edge back within its grace (never unlisted) is taken back",
    start: "a",
    inputs: [
      m({ a: 10, b: 80 }),
      dead,
      m({ a: null, b: 80 }),
      m({ a: 10, b: 80 }),
      m({ a: 10, b: 80 }),
    ],
    current: "a",
    moves: ["b", "a"],
    reason: "nearer",
    measure: "periodic",
  },
  {
    name: "return: once the first edge answered, measuring goes back to the period",
    start: "a",
    inputs: [m({ a: 70, b: 80 }), dead, m({ a: null, b: 80 }), m({ a: 75, b: 80 })],
    current: "b",
    moves: ["b"],
    reason: "stay",
    measure: "periodic",
  },
  {
    name: "return: the first edge coming back only a little nearer is not worth a move",
    start: "a",
    inputs: [
      m({ a: 70, b: 80 }),
      dead,
      m({ a: null, b: 80 }),
      m({ a: 70, b: 80 }),
      m({ a: 70, b: 80 }),
    ],
    current: "b",
    moves: ["b"],
    reason: "stay",
  },
];

for (const row of TABLE) {
  Deno.test(`edge selection: ${row.name}`, () => {
    let state = initialSelection(row.start);
    const moves: string[] = [];
    let last = null;
    for (const input of row.inputs) {
      last = decideSelection(state, input);
      state = last.state;
      if (last.moveTo) moves.push(last.moveTo);
    }
    assert.equal(state.current, row.current);
    assert.deepEqual(moves, row.moves);
    assert.equal(last!.reason, row.reason);
    if (row.measure) assert.equal(last!.measure, row.measure);
  });
}

Deno.test("edge selection: ties go to the lower id, so every connector agrees", () => {
  const d = decideSelection(initialSelection(), m({ b: 20, a: 20 }));
  assert.equal(d.moveTo, "a");
});
