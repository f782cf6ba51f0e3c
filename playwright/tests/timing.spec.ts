// Over WebRTC-direct the page can publish right after connecting, and hears the relay at once
// (the stock browser WebRTC crate loses the relay's first streams and stalls ~10 s).
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

test('over WebRTC-direct, messages flow both ways within 2 s of connecting, and the connection lasts', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    // The CLI peer is in the room first, so the relay already hubs it when the page connects:
    // the relay's subscription must reach the page on a stream it opens right away.
    const cli = await CliPeer.start(relay, 'clock');
    const page = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await page.connected();
    const connectedAt = Date.now();
    await page.ready();
    await page.send('right after connecting');
    await cli.event('the first message', (e) => e.event === 'message' && e.text === 'right after connecting', 5_000);
    const pageToCli = Date.now() - connectedAt;
    const sentBack = Date.now();
    cli.send({ cmd: 'send', text: 'straight back' });
    await expect(page.message('straight back')).toBeVisible({ timeout: 5_000 });
    const cliToPage = Date.now() - sentBack;
    console.log(`WebRTC-direct: page→CLI ${pageToCli} ms after connecting, CLI→page ${cliToPage} ms`);
    expect(pageToCli).toBeLessThan(2_000);
    expect(cliToPage).toBeLessThan(2_000);

    // And the connection lasts: the relay's pings get through (a lost ping stream would get
    // the browser disconnected as dead after ~20 s).
    await page.page.waitForTimeout(25_000);
    await expect(page.status()).toHaveAttribute('data-state', 'connected');
    await page.send('still here');
    await cli.event('a message after 25 s', (e) => e.event === 'message' && e.text === 'still here', 5_000);
    await cli.stop();
  } finally {
    await relay.stop();
  }
});
