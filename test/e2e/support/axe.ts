// axe-core scans: WCAG 2.0/2.1/2.2 A and AA rules, plus target-size (24×24 CSS px, 2.5.8). The app's strict
// CSP refuses an injected <script>, so axe's source is evaluated through the DevTools protocol
// (page.evaluate), which CSP does not govern; the page itself is not changed.
//
// Zero violations. axe reports as "incomplete" what it cannot decide alone; each such result must match an
// entry of ACCEPTED_INCOMPLETE below, which says why a person reviewed it and found it acceptable —
// anything else fails the scan, so a new kind of uncertainty is looked at rather than waved through.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Frame, Page } from 'playwright-core';
import type { AxeResults, NodeResult, Result } from 'axe-core';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

export interface AcceptedIncomplete {
  rule: string;
  /** Which nodes: matched against the node's HTML. */
  html?: RegExp;
  /** Which of axe's reasons (check messages) this covers. */
  message?: RegExp;
  /**
   * Only nodes scrolled out of view inside a scrolling container (checked in the page: the element's box is
   * not wholly inside the visible box of an ancestor that scrolls, up and down or sideways).
   */
  scrolledOutOfView?: true;
  /** Only nodes that a sticky element (not their own ancestor) overlaps right now. */
  underSticky?: true;
  reason: string;
}

/** Reviewed by hand; see the reason of each. Keep this list short and specific. */
export const ACCEPTED_INCOMPLETE: AcceptedIncomplete[] = [
  {
    rule: 'color-contrast',
    message: /partially obscured by another element/,
    scrolledOutOfView: true,
    reason:
      "axe finds a text's background with elementsFromPoint, which cannot see text scrolled out of view inside a " +
      "scrolling box (the picker dialog after Next scrolls to its end; at 320 px a wide table's columns scrolled " +
      'sideways out of its region). The same elements, with the same CSS, are scanned in view in "picker open ' +
      '(dialog)" and at 1280 px, and pass.',
  },
  {
    rule: 'color-contrast',
    message: /overlapped by another element/,
    underSticky: true,
    reason:
      'In the picker dialog the Attach SIM / Cancel bar is sticky (it stays in view while the list scrolls, WCAG ' +
      '1.4.10 at 320 px), so the text scrolling under it is covered for the moment and axe cannot see its ' +
      'background. The same elements are scanned uncovered in the other picker states, and pass.',
  },
];

export interface ScanReport {
  state: string;
  violations: Result[];
  /** Incomplete results no entry of ACCEPTED_INCOMPLETE covers. */
  unreviewed: { rule: string; node: NodeResult; messages: string[] }[];
  /** The accepted incomplete results, rule → count. */
  accepted: Record<string, number>;
  /** Rules that ran and passed or did not apply, for the record. */
  ran: number;
}

function messagesOf(node: NodeResult): string[] {
  return [...node.any, ...node.all, ...node.none].map((check) => check.message);
}

function covered(rule: string, node: NodeResult, scrolledOutOfView: boolean, underSticky: boolean): AcceptedIncomplete | undefined {
  const messages = messagesOf(node);
  return ACCEPTED_INCOMPLETE.find(
    (entry) =>
      entry.rule === rule &&
      (!entry.html || entry.html.test(node.html)) &&
      (!entry.message || messages.some((message) => entry.message!.test(message))) &&
      (!entry.scrolledOutOfView || scrolledOutOfView) &&
      (!entry.underSticky || underSticky),
  );
}

/** For each selector: is the element (partly) outside the visible box of an ancestor that scrolls? */
function scrolledOut(target: Page | Frame, selectors: string[]): Promise<boolean[]> {
  return target.evaluate((list) => {
    return list.map((selector) => {
      const element = document.querySelector(selector);
      if (!element) return false;
      const box = element.getBoundingClientRect();
      for (let parent = element.parentElement; parent; parent = parent.parentElement) {
        const style = getComputedStyle(parent);
        const view = parent.getBoundingClientRect();
        const scrollsY = ['auto', 'scroll', 'hidden'].includes(style.overflowY) && parent.scrollHeight > parent.clientHeight;
        const scrollsX = ['auto', 'scroll', 'hidden'].includes(style.overflowX) && parent.scrollWidth > parent.clientWidth;
        if (scrollsY && (box.top < view.top || box.bottom > view.bottom)) return true;
        if (scrollsX && (box.left < view.left || box.right > view.right)) return true;
      }
      return false;
    });
  }, selectors);
}

/** For each selector: does an element with position: sticky (not its ancestor) overlap it? */
function stickyOver(target: Page | Frame, selectors: string[]): Promise<boolean[]> {
  return target.evaluate((list) => {
    const sticky = [...document.querySelectorAll<HTMLElement>('body *')].filter(
      (element) => getComputedStyle(element).position === 'sticky',
    );
    return list.map((selector) => {
      const element = document.querySelector(selector);
      if (!element) return false;
      const box = element.getBoundingClientRect();
      return sticky.some((bar) => {
        if (bar.contains(element)) return false;
        const over = bar.getBoundingClientRect();
        return over.left < box.right && over.right > box.left && over.top < box.bottom && over.bottom > box.top;
      });
    });
  }, selectors);
}

/** Runs axe on the page (or one frame) as it is now. */
export async function scan(target: Page | Frame, state: string): Promise<ScanReport> {
  const loaded = await target.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe === 'object');
  if (!loaded) await target.evaluate(axeSource);
  const results = await target.evaluate(
    ([tags]) =>
      (window as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<AxeResults> } }).axe.run(document, {
        runOnly: { type: 'tag', values: tags },
        rules: { 'target-size': { enabled: true } },
        iframes: false,
        resultTypes: ['violations', 'incomplete'],
      }),
    [AXE_TAGS] as const,
  );
  const report: ScanReport = {
    state,
    violations: results.violations,
    unreviewed: [],
    accepted: {},
    ran: results.passes.length + results.inapplicable.length,
  };
  for (const result of results.incomplete) {
    // Only plain selectors (no frames, no shadow DOM) exist in this app's pages.
    const selectors = result.nodes.map((node) => String(node.target[0]));
    const outOfView = await scrolledOut(target, selectors);
    const underSticky = await stickyOver(target, selectors);
    for (const [i, node] of result.nodes.entries()) {
      if (covered(result.id, node, outOfView[i], underSticky[i])) report.accepted[result.id] = (report.accepted[result.id] ?? 0) + 1;
      else report.unreviewed.push({ rule: result.id, node, messages: messagesOf(node) });
    }
  }
  return report;
}

/** A readable account of what is wrong, for the assertion message. */
export function describe(report: ScanReport): string {
  const lines: string[] = [];
  for (const violation of report.violations) {
    lines.push(`violation ${violation.id} (${violation.impact}): ${violation.help}`);
    for (const node of violation.nodes)
      lines.push(`  ${node.target.join(' ')}  ${node.html.slice(0, 160)}\n    ${node.failureSummary?.replace(/\n/g, '\n    ')}`);
  }
  for (const { rule, node, messages } of report.unreviewed) {
    lines.push(`incomplete ${rule}, not reviewed: ${node.target.join(' ')}  ${node.html.slice(0, 160)}\n    ${messages.join('\n    ')}`);
  }
  return lines.length ? `axe on "${report.state}":\n${lines.join('\n')}` : `axe on "${report.state}": clean`;
}

/** Scans and throws if there is any violation or unreviewed incomplete result. */
export async function assertAccessible(target: Page | Frame, state: string): Promise<ScanReport> {
  const report = await scan(target, state);
  if (report.violations.length || report.unreviewed.length) throw new Error(describe(report));
  return report;
}
