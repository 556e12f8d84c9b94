// Keyboard-only movement with checks at every step: the focused element has a visible focus indicator, and
// while a modal dialog is open focus never lands on anything outside it (it may pass through the browser's
// own UI, which is how a native modal <dialog> lets people leave the page — not a trap, and not the page).
import type { Locator, Page } from 'playwright-core';
import { describeFocus, focusIndicator, isFocused } from './browser.js';

export interface FocusCheck {
  /** Tab presses so far, and where focus was after each: "<description>" or "(browser UI)". */
  trail: string[];
}

/** Checks where focus is now; throws with the trail when it is invisible or has escaped an open dialog. */
export async function checkFocus(page: Page, trail: string[]): Promise<void> {
  const where = await page.evaluate(() => {
    const dialog = document.querySelector('dialog[open]');
    const active = document.activeElement;
    return {
      pageHasFocus: document.hasFocus(),
      onBody: !active || active === document.body,
      dialogOpen: Boolean(dialog),
      insideDialog: Boolean(dialog && active && dialog.contains(active)),
    };
  });
  if (!where.pageHasFocus || where.onBody) {
    // Between the end and the start of the page (or of a modal dialog), focus visits the browser's UI.
    trail.push('(browser UI)');
    return;
  }
  const description = await describeFocus(page);
  trail.push(description);
  if (where.dialogOpen && !where.insideDialog) {
    throw new Error(`focus left the open dialog: ${description}\nfocus went: ${trail.join(' → ')}`);
  }
  const indicator = await focusIndicator(page);
  if (!indicator.visible) {
    throw new Error(`no visible focus indicator on ${description} (${indicator.detail})\nfocus went: ${trail.join(' → ')}`);
  }
}

/** Presses a key and checks focus afterwards. */
export async function press(page: Page, key: string, trail: string[] = []): Promise<void> {
  await page.keyboard.press(key);
  await checkFocus(page, trail);
}

/**
 * Tabs (or Shift+Tabs) until `target` has focus, checking focus at every step. Throws when it is not reached
 * within `max` presses, with the path focus took.
 */
export async function tabTo(page: Page, target: Locator, options: { backwards?: boolean; max?: number } = {}): Promise<string[]> {
  const trail: string[] = [];
  const key = options.backwards ? 'Shift+Tab' : 'Tab';
  for (let i = 0; i < (options.max ?? 40); i++) {
    await press(page, key, trail);
    if ((await target.count()) === 1 && (await isFocused(target))) return trail;
  }
  throw new Error(`${key} did not reach ${target} in ${options.max ?? 40} presses; focus went: ${trail.join(' → ')}`);
}
