// History and offline delivery in the browser: a closed tab gets what it missed, in order and
// once, when it is opened again, including a direct message the relay kept sealed for it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

const away = (i: number) => `while away ${String(i).padStart(3, '0')}`;

for (const transport of ['webrtc', 'ws'] as const) test(`a reopened tab shows every message and the DM it missed, in order, once, and chats again (${transport})`, async ({ browser }) => {
  test.setTimeout(120_000);
  const relay = await Relay.start();
  try {
    const cli = await CliPeer.start(relay, 'terminal');
    const page = await ChatPage.open(browser, relay.pageUrl(transport));
    await page.connected();
    await page.ready();
    const pageId = await page.peerId();
    await cli.event('the page in the room', (e) => e.event === 'member_joined' && e.peer === pageId);
    await page.send('hello before');
    await cli.event('the page message', (e) => e.event === 'message' && e.text === 'hello before');
    // The relay confirmed keeping it.
    await expect(page.message('hello before').getByTestId('stored')).toHaveText('✓✓');

    // Close the tab; its browser profile (localStorage) stays.
    const context = page.page.context();
    await page.page.close();
    await cli.event('the tab gone', (e) => e.event === 'member_left' && e.peer === pageId);
    for (let i = 0; i < 200; i++) cli.send({ cmd: 'send', text: away(i) });
    const stored = new Set<string>();
    while (stored.size < 200) {
      const receipt = await cli.event('store receipts', (e) => e.event === 'stored' || e.event === 'not_stored');
      expect(receipt.event, JSON.stringify(receipt)).toBe('stored');
      stored.add(receipt.id);
    }
    const secret = 'a dm while you were away';
    cli.send({ cmd: 'dm', peer: pageId, text: secret });
    const kept = await cli.event('the dm kept', (e) => ['dm_stored', 'dm_failed', 'dm_delivered'].includes(e.event));
    expect(kept.event, JSON.stringify(kept)).toBe('dm_stored');
    expect(readFileSync(join(relay.dataDir, 'store.redb')).includes(secret), 'the relay holds the DM in plaintext').toBe(false);

    const again = new ChatPage(await context.newPage());
    const reopened = Date.now();
    await again.page.goto(relay.pageUrl(transport));
    await again.connected();
    expect(await again.peerId()).toBe(pageId);
    const expected = Array.from({ length: 200 }, (_, i) => away(i));
    const texts = () => again.page.getByTestId('message-text').allTextContents();
    await expect.poll(async () => (await texts()).filter((t) => t.startsWith('while away')), { timeout: 30_000, intervals: [50] }).toEqual(expected);
    const shown = Date.now() - reopened;
    // And the reopened tab chats live, both ways.
    await again.send('back again');
    await cli.event('the reopened tab\'s message', (e) => e.event === 'message' && e.text === 'back again');
    cli.send({ cmd: 'send', text: 'welcome back' });
    await expect(again.message('welcome back')).toBeVisible();
    console.log(`reopened tab (${transport}): 200 missed messages shown ${shown} ms after opening the URL, ` +
      `chatted both ways ${Date.now() - reopened} ms after`);
    expect((await texts()).filter((t) => t === 'hello before')).toHaveLength(1);
    await expect(again.page.locator('[data-testid=message][data-history=true]').first()).toBeVisible();
    await expect(again.dmLine(secret)).toHaveAttribute('data-state', 'received-kept');
    await cli.event('the delivery notice', (e) => e.event === 'dm_delivered' && e.peer === pageId);

    // A reload shows the same, from this browser's own history first, still once each.
    await again.page.reload();
    await again.connected();
    await expect.poll(async () => (await texts()).filter((t) => t.startsWith('while away')), { timeout: 30_000 }).toEqual(expected);
    expect(again.errors).toEqual([]);
    await cli.stop();
  } finally {
    await relay.stop();
  }
});
