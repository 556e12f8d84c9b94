// Which demo records each scenario uses, so that no two scenarios touch the same endpoint or SIM and the
// files can run in any order on one seeded database. The demo data (src/db/seed-demo.ts) gives Acme 12 Hold
// endpoints (Activate Immediately on for the even-numbered ones), 8 Pre-Active, 10 Active, 6 Suspended,
// and ~300 Ready to Activate SIMs whose ICCIDs are iccidFor(10, serial) from serial 1 upwards.
import { iccidFor } from '../../../src/db/generate-identifiers.js';

export const ADMIN = 'admin@acme.example';
export const VIEWER = 'viewer@acme.example';

/** A demo SIM of Acme by serial: its ICCID, and a search prefix (the ICCID without its check digit) that matches only it. */
export function demoSim(serial: number) {
  const iccid = iccidFor(10, serial);
  return { iccid, prefix: iccid.slice(0, -1) };
}

/** A search prefix matching the ten SIMs with serials first…first+9 (first a multiple of 10). */
export function tenSims(first: number) {
  if (first % 10 !== 0) throw new RangeError('first must be a multiple of 10');
  return { prefix: iccidFor(10, first).slice(0, -2), iccids: Array.from({ length: 10 }, (_, i) => iccidFor(10, first + i)) };
}

/** Hold endpoints (name, Activate Immediately) and SIM serials, one set per scenario. */
export const SCENARIO = {
  mouse: {
    activateOff: { endpoint: 'Trailer 01', activateImmediately: false, sim: demoSim(11) },
    activateOn: { endpoint: 'Cold box 02', activateImmediately: true, sim: demoSim(12) },
  },
  keyboard: { endpoint: 'Forklift 03', activateImmediately: false, sims: tenSims(130), pick: 2 },
  noJs: { endpoint: 'Gate sensor 04', activateImmediately: true, sim: demoSim(14) },
  conflict: { first: 'Pallet tracker 05', second: 'Truck 06', sim: demoSim(15) },
  embedded: { endpoint: 'Trailer 07', activateImmediately: false, sim: demoSim(16) },
  /** The accessibility scans read this Hold endpoint (picker and confirmation, then No) … */
  axeHold: { endpoint: 'Cold box 08' },
  /** … and link a SIM to this one for the success message. */
  axeLinked: { endpoint: 'Forklift 09', sim: demoSim(17) },
  create: {
    activateOn: { name: 'E2E created, activate on', sim: demoSim(18) },
    activateOff: { name: 'E2E created, activate off', sim: demoSim(19) },
  },
  /** SIMs imported from a CSV file, then one of them linked to this Hold endpoint (Activate Immediately on). */
  import: { endpoint: 'Truck 12', activateImmediately: true },
  /** Pre-Active endpoints: Activate → Suspend → Resume, and a No that changes nothing. */
  steps: { endpoint: 'Cold box 14', declined: 'Forklift 15' },
  /** A bulk change by keyboard: link a SIM to a Hold endpoint and activate a Pre-Active one. */
  bulk: { hold: 'Pallet tracker 11', preActive: 'Gate sensor 16', sim: demoSim(250) },
  /** The job page at 320 px: a job activating this Pre-Active endpoint. */
  reflowBulk: { preActive: 'Pallet tracker 17' },
  /** Seeded endpoints in each state, only read. */
  states: { hold: 'Gate sensor 10', preActive: 'Trailer 13', active: 'Forklift 21', suspended: 'Trailer 31' },
} as const;
