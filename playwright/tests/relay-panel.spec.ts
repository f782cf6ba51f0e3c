// Finding a relay by hand: a bad address gets a clear message, a pasted good one connects.
import { ChatPage, Relay, test, expect } from './fixtures';

test('a bad relay address gets a clear message and a pasted good one connects', async ({ browser }) => {
  const relay = await Relay.start();
  try {
    const page = await ChatPage.open(browser, `${relay.url}?relay=not-a-multiaddr`);
    await expect(page.status()).toHaveAttribute('data-state', 'no-relay');
    await expect(page.status()).toContainText('"not-a-multiaddr" is not a multiaddr');

    const input = page.page.getByTestId('relay-input');
    await expect(input).toBeVisible(); // the panel opens by itself when there is no relay
    await input.fill('/ip4/127.0.0.1/tcp/4002/ws');
    await page.page.getByTestId('relay-connect').click();
    await expect(page.page.getByTestId('relay-error')).toContainText('/p2p/');

    await input.fill(relay.ws);
    await page.page.getByTestId('relay-connect').click();
    await expect(page.page.getByTestId('relay-error')).toHaveCount(0);
    await page.connected();
    await expect(page.status()).toContainText('via WebSocket');
    await page.ready();
  } finally {
    await relay.stop();
  }
});
