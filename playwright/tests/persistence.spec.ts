// What a user keeps across a reload, and what happens when the relay restarts.
import { ChatPage, CliPeer, Relay, freePort, test, expect } from './fixtures';

test('a reload keeps the peer id, the nickname and the rooms', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const page = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await page.connected();
    await page.setNick('stays');
    await page.page.getByTestId('join-input').fill('second');
    await page.page.getByTestId('join-input').press('Enter');
    await expect(page.page.locator('[data-testid=room][data-room=second]')).toBeVisible();
    const id = await page.peerId();
    expect(id).toMatch(/^12D3KooW/);

    await page.page.reload();
    await page.connected();
    expect(await page.peerId()).toBe(id);
    expect(await page.nick()).toBe('stays');
    await expect(page.page.locator('[data-testid=room][data-room=second]')).toBeVisible();
    await expect(page.page.locator('[data-testid=room][data-room=lobby]')).toBeVisible();

    // The reloaded page chats at once, although the relay still held the old page's
    // connection when it came back (it closes both, and the page redials).
    await page.page.locator('[data-testid=room][data-room=lobby] .room-name').click();
    await page.ready();
    const cli = await CliPeer.start(relay, 'witness');
    await expect(page.member(cli.peerId)).toBeVisible();
    await page.send('after the reload');
    await cli.event('the message after the reload', (e) => e.event === 'message' && e.text === 'after the reload');
    cli.send({ cmd: 'send', text: 'welcome back' });
    await expect(page.message('welcome back')).toBeVisible();
    await cli.stop();
  } finally {
    await relay.stop();
  }
});

test('two tabs of one browser get their own peer ids and both chat', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const first = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await first.connected();
    await first.ready();
    const second = new ChatPage(await first.page.context().newPage());
    await second.page.goto(relay.pageUrl('webrtc'));
    await second.connected();
    await second.ready();
    const [a, b] = [await first.peerId(), await second.peerId()];
    expect(a).not.toBe(b);
    await expect(first.member(b)).toBeVisible();
    await second.send('from the second tab');
    await expect(first.message('from the second tab')).toBeVisible();
    await first.send('from the first tab');
    await expect(second.message('from the first tab')).toBeVisible();
    // The first tab keeps the browser's identity across a reload; the second keeps its own.
    await first.page.reload();
    await first.connected();
    expect(await first.peerId()).toBe(a);
    await second.page.reload();
    await second.connected();
    expect(await second.peerId()).toBe(b);
    expect([...first.errors, ...second.errors]).toEqual([]);
  } finally {
    await relay.stop();
  }
});

for (const transport of ['webrtc', 'ws'] as const) {
  test(`after a relay restart the page reconnects and chats again (${transport})`, async ({ browser }) => {
    // Fixed ports and data directory: the restarted relay has the same addresses and certhash.
    const relay = await Relay.start({ port: await freePort() });
    const page = await ChatPage.open(browser, relay.pageUrl(transport));
    try {
      await page.connected();
      await page.ready();
      // Every status the page shows from now on.
      await page.page.evaluate(() => {
        const status = document.querySelector('[data-testid=status]')!;
        const seen: string[] = ((window as any).statusesSeen = []);
        new MutationObserver(() => seen.push(status.textContent ?? ''))
          .observe(status, { subtree: true, childList: true, characterData: true });
      });
      if (transport === 'ws') {
        // Back a second later, as after a quick restart: the page's attempts meanwhile find its
        // WebSocket refused; they must not fall through to the relay's other addresses (a
        // WebRTC dial would wait for the relay and win: the page was told to use WebSocket).
        await relay.kill();
        await expect(page.status()).toHaveAttribute('data-state', 'reconnecting', { timeout: 45_000 });
        await new Promise((r) => setTimeout(r, 1_000));
        await relay.launch();
        await page.connected();
        await page.ready();
      }
      await relay.kill();
      // A vanished relay is noticed when the socket closes (WebSocket) or its pings go unanswered.
      await expect(page.status()).toHaveAttribute('data-state', 'reconnecting', { timeout: 45_000 });
      if (transport === 'ws') {
        // While the relay is down the page keeps trying (attempts come at most a second apart):
        // a refused WebSocket fails at once, and is neither left hanging nor followed by a
        // dial over another transport.
        await expect(page.status()).toContainText(/attempt ([3-9]|\d\d)/, { timeout: 15_000 });
      }
      await relay.launch();
      await page.connected();
      await page.ready();
      const statuses: string[] = await page.page.evaluate(() => (window as any).statusesSeen);
      const via = transport === 'ws' ? 'WebSocket' : 'WebRTC-direct';
      expect(statuses.filter((s) => s.startsWith('connected')).every((s) => s.includes(via)),
        `only ever connected via ${via}: ${statuses.join(' | ')}`).toBe(true);
      const cli = await CliPeer.start(relay, 'after');
      await expect(page.member(cli.peerId)).toBeVisible();
      await page.send('back again');
      await cli.event('the message after the restart', (e) => e.event === 'message' && e.text === 'back again');
      await cli.stop();
    } finally {
      await relay.stop();
    }
  });
}

test('a damaged saved identity is kept aside and the page says so, never silently replaced', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const page = await ChatPage.open(browser, relay.pageUrl('ws'));
    await page.connected();
    const before = await page.peerId();
    // The identity entry gets damaged (a broken extension, a bad sync, a disk error).
    await page.page.evaluate(() => {
      localStorage.setItem('p2p-chat/identity', '"not a key"');
      localStorage.removeItem('p2p-chat/identity-lease');
    });
    await page.page.reload();
    await page.connected();
    await expect(page.page.getByTestId('error')).toContainText('damaged');
    const kept = await page.page.evaluate(() => localStorage.getItem('p2p-chat/identity-damaged'));
    expect(kept).toBe('"not a key"');
    const after = await page.peerId();
    expect(after).not.toBe(before);
    expect(after).toMatch(/^12D3KooW/);
  } finally {
    await relay.stop();
  }
});
