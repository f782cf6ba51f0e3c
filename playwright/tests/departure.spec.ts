// A closed tab leaves: the relay drops it and the other members' lists lose it within 30 s.
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

test('a closed browser tab disappears from the relay and from the member lists within 30 s', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const cli = await CliPeer.start(relay, 'watcher');
    const stays = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    const leaves = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    for (const page of [stays, leaves]) { await page.connected(); await page.ready(); }
    const leavingId = await leaves.peerId();
    await expect(stays.member(leavingId)).toBeVisible();
    await cli.event('the leaving page in the CLI list', (e) => e.event === 'member_joined' && e.peer === leavingId);
    const peers = async () => (await (await fetch(relay.url + 'healthz')).json()).connected_peers;
    expect(await peers()).toBe(3);

    const closedAt = Date.now();
    await leaves.close();
    await expect(stays.member(leavingId)).toHaveCount(0, { timeout: 30_000 });
    const left = await cli.event('the page leaving', (e) => e.event === 'member_left' && e.peer === leavingId, 30_000);
    await expect.poll(peers, { timeout: 30_000 }).toBe(2);
    console.log(`closed tab gone after ${Date.now() - closedAt} ms (CLI saw reason: ${left.reason})`);
    await cli.stop();
  } finally {
    await relay.stop();
  }
});
