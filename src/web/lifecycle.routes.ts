// The endpoint's lifecycle steps after linking: activate, suspend, resume. Each goes through a server-rendered
// confirmation ("Are you sure you want to continue?") carrying the CSRF token and a one-time key; Yes posts
// it, No goes back unchanged. The rules are the domain's (domain/lifecycle.ts).
//   GET  /endpoints/:id/{activate,suspend,resume}   the confirmation     POST the same   the step
import type { FastifyInstance } from 'fastify';
import { activateEndpoint, resumeEndpoint, suspendEndpoint } from '../domain/lifecycle.js';
import { confirmedStepRoutes, type ConfirmedStep } from './endpoint-pages.js';

const STEPS: ConfirmedStep[] = [
  {
    operation: 'activate',
    path: 'activate',
    summary: (e) => `Activate endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: activateEndpoint,
    event: 'endpoint.activated',
  },
  {
    operation: 'suspend',
    path: 'suspend',
    summary: (e) => `Suspend endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: suspendEndpoint,
    event: 'endpoint.suspended',
  },
  {
    operation: 'resume',
    path: 'resume',
    summary: (e) => `Resume endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: resumeEndpoint,
    event: 'endpoint.resumed',
  },
];

export async function lifecycleRoutes(app: FastifyInstance) {
  for (const step of STEPS) confirmedStepRoutes(app, step);
}
