// `npm start`: build when dist/ is missing or older than the sources, then run the server in this same
// process — so the signal a process manager sends to `npm start` (SIGTERM, SIGINT) reaches the server.
import './build-if-needed.mjs';
await import('../dist/src/server.js');
