// Direct messages between a browser and a CLI peer, through the relay circuit, acknowledged.
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

for (const transport of ['webrtc', 'ws'] as const) {
  test(`direct messages browser → CLI and CLI → browser are acknowledged (${transport})`, async ({ browser }) => {
    const relay = await Relay.start();
    try {
      const cli = await CliPeer.start(relay, 'terminal');
      const page = await ChatPage.open(browser, relay.pageUrl(transport));
      await page.connected();
      await page.ready();
      const pageId = await page.peerId();
      await expect(page.member(cli.peerId)).toBeVisible();
      await cli.event('the page in the room', (e) => e.event === 'member_joined' && e.peer === pageId);

      await page.dm(cli.peerId, 'psst from the page');
      const dm = await cli.event('the dm', (e) => e.event === 'direct_message');
      expect(dm.text).toBe('psst from the page');
      expect(dm.from).toBe(pageId);
      await expect(page.dmLine('psst from the page')).toHaveAttribute('data-state', 'delivered');

      cli.send({ cmd: 'dm', peer: pageId, text: 'psst from the terminal' });
      const receipt = await cli.event('the receipt', (e) => e.event === 'dm_delivered' || e.event === 'dm_failed');
      expect(receipt.event, JSON.stringify(receipt)).toBe('dm_delivered');
      expect(receipt.relayed).toBe(true);
      await expect(page.dmLine('psst from the terminal')).toHaveAttribute('data-state', 'received');
      expect(page.errors).toEqual([]);
      await cli.stop();
    } finally {
      await relay.stop();
    }
  });
}
