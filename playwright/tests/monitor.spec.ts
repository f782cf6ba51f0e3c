// The relay's monitor page, on its operator address: it shows the peers and rooms of a running
// network, and follows as a CLI peer joins, sends and leaves; it fits a phone's width.
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

test('the monitor page shows the network and follows a CLI peer that joins, sends and leaves', async ({ browser }, testInfo) => {
  const relay = await Relay.start();
  try {
    const chat = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await chat.connected();
    await chat.ready();
    const monitor = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    monitor.on('pageerror', (e) => errors.push(String(e)));
    monitor.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); });
    await monitor.goto(relay.admin);
    await expect(monitor.locator('#peer-id')).toHaveText(relay.peerId);
    await expect(monitor.locator('#live')).toHaveText('live');
    await expect(monitor.locator('#peers')).toHaveText('1');
    const lobby = monitor.locator('#rooms tr[data-room="lobby"] td.members b');
    await expect(lobby).toHaveText('1');
    await expect(monitor.locator('#legend li[data-transport="webrtc-direct"] b')).toHaveText('1');
    await expect(monitor.locator('#store-messages')).toHaveText('0');
    await expect(monitor.locator('#addrs')).toContainText('/webrtc-direct/certhash/');

    const cli = await CliPeer.start(relay, 'terminal');
    await expect(monitor.locator('#peers')).toHaveText('2');
    await expect(lobby).toHaveText('2');
    await expect(monitor.locator('#legend li[data-transport="tcp"] b')).toHaveText('1');
    await expect(monitor.locator(`#events li[data-kind="connected"] code[title="${cli.peerId}"]`)).toBeVisible();
    cli.send({ cmd: 'send', text: 'counted on the monitor' });
    await expect(chat.message('counted on the monitor')).toBeVisible();
    await expect(monitor.locator('#store-messages')).toHaveText('1');
    await expect(monitor.locator('#rate-chart polyline')).toBeVisible();

    // A room name is a peer's choice: shown as text, never run as markup.
    const hostile = `<img/src=x/onerror=document.title='pwned'>`;
    cli.send({ cmd: 'join', room: hostile });
    await expect(monitor.locator('#rooms td.room', { hasText: hostile })).toHaveText(hostile);
    await expect(monitor.locator('#rooms img')).toHaveCount(0);
    expect(await monitor.title()).toBe('p2p-chat relay monitor');
    await testInfo.attach('monitor-desktop', { body: await monitor.screenshot({ fullPage: true }), contentType: 'image/png' });

    // A phone: nothing wider than the screen.
    await monitor.setViewportSize({ width: 390, height: 844 });
    await expect(monitor.locator('#peers')).toHaveText('2');
    const overflow = await monitor.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, 'the page is no wider than a phone').toBeLessThanOrEqual(0);
    await testInfo.attach('monitor-phone', { body: await monitor.screenshot({ fullPage: true }), contentType: 'image/png' });

    await cli.stop();
    await expect(monitor.locator('#peers')).toHaveText('1');
    await expect(lobby).toHaveText('1');
    await expect(monitor.locator(`#events li[data-kind="disconnected"] code[title="${cli.peerId}"]`)).toBeAttached();
    expect(errors).toEqual([]);
    expect(chat.errors).toEqual([]);
  } finally {
    await relay.stop();
  }
});

test('the public address serves neither the monitor nor the metrics', async ({ request }) => {
  const relay = await Relay.start();
  try {
    for (const path of ['monitor', 'monitor.json', 'metrics']) {
      const response = await request.get(relay.url + path);
      expect(response.status(), `${relay.url}${path}`).toBe(404);
    }
    const admin = await request.get(relay.admin + 'metrics');
    expect(admin.status()).toBe(200);
    expect(await admin.text()).toContain('p2p_chat_connected_peers');
  } finally {
    await relay.stop();
  }
});
