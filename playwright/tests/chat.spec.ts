// Browsers and CLI peers chat in one room through the relay, over WebRTC-direct and WebSocket.
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

for (const transport of ['webrtc', 'ws'] as const) {
  const label = transport === 'webrtc' ? 'WebRTC-direct' : 'WebSocket';

  test(`two browser pages chat both ways in one room over ${label}`, async ({ browser }) => {
    const relay = await Relay.start();
    try {
      const ann = await ChatPage.open(browser, relay.pageUrl(transport));
      const ben = await ChatPage.open(browser, relay.pageUrl(transport));
      for (const page of [ann, ben]) {
        await page.connected();
        await expect(page.status()).toContainText(`via ${label}`);
        await page.ready();
      }
      await ann.setNick('ann');
      await ben.setNick('ben');
      await expect(ann.member(await ben.peerId())).toBeVisible();
      await expect(ben.member(await ann.peerId())).toBeVisible();

      await ann.send('hello ben');
      await expect(ben.message('hello ben')).toContainText('ann');
      await expect(ann.message('hello ben')).toHaveAttribute('data-own', 'true');
      await ben.send('hi ann');
      await expect(ann.message('hi ann')).toContainText('ben');
      await expect(ann.message('hi ann')).toHaveCount(1);
      expect([...ann.errors, ...ben.errors]).toEqual([]);
    } finally {
      await relay.stop();
    }
  });

  test(`a browser and a CLI peer chat both ways over ${label}`, async ({ browser }) => {
    const relay = await Relay.start();
    try {
      const cli = await CliPeer.start(relay, 'terminal');
      const page = await ChatPage.open(browser, relay.pageUrl(transport));
      await page.connected();
      await page.ready();
      await page.setNick('webby');
      await expect(page.member(cli.peerId)).toContainText('terminal');
      const pageId = await page.peerId();
      await cli.event('the page in the room', (e) => e.event === 'member_joined' && e.peer === pageId);

      await page.send('from the browser');
      const got = await cli.event('the page message', (e) => e.event === 'message' && e.text === 'from the browser');
      expect(got.from).toBe(pageId);
      expect(got.nick).toBe('webby');
      cli.send({ cmd: 'send', text: 'from the terminal' });
      await expect(page.message('from the terminal')).toContainText('terminal');
      expect(page.errors).toEqual([]);
      await cli.stop();
    } finally {
      await relay.stop();
    }
  });
}

test('a browser and a CLI peer chat over WebSocket with TLS (/tls/ws)', async ({ browser }) => {
  const relay = await Relay.start({ tls: true });
  try {
    const cli = await CliPeer.start(relay, 'terminal');
    const page = await ChatPage.open(browser, relay.pageUrl('wss'));
    await page.connected();
    await expect(page.status()).toContainText('via WebSocket (TLS)');
    await page.ready();
    await expect(page.member(cli.peerId)).toBeVisible();
    await page.send('over tls');
    await cli.event('the page message', (e) => e.event === 'message' && e.text === 'over tls');
    cli.send({ cmd: 'send', text: 'tls back' });
    await expect(page.message('tls back')).toBeVisible();
    await cli.stop();
  } finally {
    await relay.stop();
  }
});
