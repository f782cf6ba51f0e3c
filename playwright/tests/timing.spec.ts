// Over WebRTC-direct the page can publish right after connecting, and hears the relay at once
// (the stock browser WebRTC crate loses the relay's first streams and stalls ~10 s).
import { test, expect } from '@playwright/test';
import { ChatPage, CliPeer, Relay } from './fixtures';

test('over WebRTC-direct, messages flow both ways within 2 s of connecting', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const cli = await CliPeer.start(relay, 'clock');
    const page = await ChatPage.open(browser, relay.pageUrl('webrtc'));
    await page.connected();
    const connectedAt = Date.now();
    await page.ready();
    await page.send('right after connecting');
    await cli.event('the first message', (e) => e.event === 'message' && e.text === 'right after connecting', 2_000);
    const first = Date.now() - connectedAt;
    cli.send({ cmd: 'send', text: 'straight back' });
    await expect(page.message('straight back')).toBeVisible({ timeout: 2_000 });
    console.log(`page→CLI ${first} ms after connecting; CLI→page ${Date.now() - connectedAt - first} ms later`);
    await cli.stop();
  } finally {
    await relay.stop();
  }
});
