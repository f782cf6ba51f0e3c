// Screenshots of the monitor page at desktop and phone widths while a chat workload runs: a
// page and six CLI peers in three rooms, each peer sending five messages a second for 40 s.
// MONITOR_SHOTS=<dir> writes them there (the README's come from `MONITOR_SHOTS=../docs`);
// otherwise they are attached to the report.
import { join } from 'node:path';
import { ChatPage, CliPeer, Relay, test, expect } from '../tests/fixtures';

const ROOMS = ['lobby', 'rust', 'design'];
const PEERS = 6;
const RATE = 5;
const SECONDS = 40;

test('monitor screenshots under a chat workload', async ({ browser }, testInfo) => {
  test.setTimeout(180_000);
  const relay = await Relay.start();
  const peers: CliPeer[] = [];
  try {
    const chat = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await chat.connected();
    await chat.ready();
    for (let i = 0; i < PEERS; i++) {
      const peer = await CliPeer.start(relay, `peer-${i}`);
      const room = ROOMS[i % ROOMS.length];
      if (room !== 'lobby') peer.send({ cmd: 'join', room });
      peers.push(peer);
    }
    const monitor = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await monitor.goto(relay.admin);
    await expect(monitor.locator('#peers')).toHaveText(String(PEERS + 1));
    // The workload runs on while the screenshots are taken, 30 s in.
    let sent = 0;
    const load = (async () => {
      const started = Date.now();
      while (Date.now() - started < SECONDS * 1000) {
        for (const [i, peer] of peers.entries()) peer.send({ cmd: 'send', room: ROOMS[i % ROOMS.length], text: `load ${i} ${sent}` });
        sent++;
        await new Promise((r) => setTimeout(r, 1000 / RATE));
      }
    })();
    await monitor.waitForTimeout(30_000);
    const shots = process.env.MONITOR_SHOTS;
    let rate = '';
    for (const [name, width, height] of [['monitor-desktop', 1280, 900], ['monitor-phone', 390, 844]] as const) {
      await monitor.setViewportSize({ width, height });
      await monitor.waitForTimeout(1000);
      rate = (await monitor.locator('#rate').textContent()) ?? '';
      const body = await monitor.screenshot({ fullPage: true, ...(shots ? { path: join(shots, `${name}.png`) } : {}) });
      await testInfo.attach(name, { body, contentType: 'image/png' });
    }
    await load;
    console.log(`monitor: ${PEERS} CLI peers and a page, ${sent * PEERS} messages in ${SECONDS} s; rate shown while it ran: ${rate} msg/s`);
  } finally {
    for (const peer of peers) await peer.stop();
    await relay.stop();
  }
});
