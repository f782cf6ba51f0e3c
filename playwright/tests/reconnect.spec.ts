// Coming back: a page reloaded, or closed and opened again while the relay still holds its old
// connection, chats both ways at once, sees the room's members, and is listed once by them.
// (How fast is measured by `bench/reconnect.bench.ts`.)
import { ChatPage, CliPeer, Relay, test, expect } from './fixtures';

for (const transport of ['webrtc', 'ws'] as const) {
  test(`a reloaded and a reopened page chat both ways at once and are listed once (${transport})`, async ({ browser }) => {
    const relay = await Relay.start();
    try {
      const cli = await CliPeer.start(relay, 'watcher');
      const stays = await ChatPage.open(browser, relay.pageUrl(transport));
      let back = await ChatPage.open(browser, relay.pageUrl(transport));
      for (const page of [stays, back]) { await page.connected(); await page.ready(); }
      const id = await back.peerId();
      await expect(stays.member(id)).toBeVisible();

      const both_ways = async (round: string) => {
        await back.ready();
        await back.send(`${round}: back`);
        await expect(stays.message(`${round}: back`)).toHaveCount(1);
        await cli.event(`${round} from the page`, (e) => e.event === 'message' && e.text === `${round}: back`);
        await stays.send(`${round}: welcome`);
        await expect(back.message(`${round}: welcome`)).toHaveCount(1);
        cli.send({ cmd: 'send', text: `${round}: hello from the terminal` });
        await expect(back.message(`${round}: hello from the terminal`)).toHaveCount(1);
        await expect(back.member(await stays.peerId())).toBeVisible();
        await expect(back.member(cli.peerId)).toBeVisible();
        await expect(stays.member(id)).toHaveCount(1);
        expect(await back.peerId()).toBe(id);
      };

      await back.page.reload();
      await both_ways('reloaded');

      // Closed, then opened again in the same browser while the relay holds the old connection.
      const context = back.page.context();
      await back.page.close();
      back = new ChatPage(await context.newPage());
      await back.page.goto(relay.pageUrl(transport));
      await both_ways('reopened');
      await cli.stop();
    } finally {
      await relay.stop();
    }
  });
}
