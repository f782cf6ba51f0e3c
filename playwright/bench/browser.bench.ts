// The browser's figures (a measurement that prints numbers, not a pass/fail test): how long from
// opening the URL until a message can be sent, and how long a message takes from the page's
// composer to a CLI peer (and back), over WebRTC-direct and over WebSocket.
//
//   cd playwright && npx playwright test --config bench.config.ts
//
// Uses the relay binary and the built app the tests use (P2P_CHAT_BIN, P2P_CHAT_WEB_DIR pick
// others: the release build, say).
import { ChatPage, CliPeer, Relay, test } from '../tests/fixtures';

const OPENS = Number(process.env.BENCH_OPENS ?? 5);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50);

function summary(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length, Math.max(1, Math.ceil(q * s.length))) - 1];
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50: r(at(0.5)), p95: r(at(0.95)), max: r(s[s.length - 1]), n: s.length };
}

for (const transport of ['webrtc', 'ws'] as const) {
  test(`browser figures over ${transport}`, async ({ browser }) => {
    const relay = await Relay.start();
    try {
      const cli = await CliPeer.start(relay, 'bench-cli');
      // Opening the URL until the composer accepts a message, in fresh browser contexts.
      const opens: number[] = [];
      for (let i = 0; i < OPENS; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        const ready = page.waitForFunction(
          () => document.querySelector('[data-testid=composer]')?.getAttribute('data-ready') === 'true',
          null, { polling: 'raf', timeout: 30_000 });
        await page.goto(relay.pageUrl(transport));
        await ready;
        opens.push(await page.evaluate(() => performance.now()));
        await context.close();
      }

      const chat = await ChatPage.open(browser, relay.pageUrl(transport));
      await chat.ready();
      // Page → CLI: from the Enter key to the CLI peer's JSON line.
      const toCli: number[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        const text = `to-cli ${i}`;
        await chat.page.getByTestId('composer').fill(text);
        const t0 = Date.now();
        await chat.page.getByTestId('composer').press('Enter');
        await cli.event(text, (e) => e.event === 'message' && e.text === text, 10_000);
        toCli.push(Date.now() - t0);
      }
      // CLI → page: from the command on the CLI's input to the message shown in the page.
      const toPage: number[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        const text = `to-page ${i}`;
        const shown = chat.page.waitForFunction(
          (t) => [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent?.includes(t)),
          text, { polling: 'raf', timeout: 10_000 });
        const t0 = Date.now();
        cli.send({ cmd: 'send', text });
        await shown;
        toPage.push(Date.now() - t0);
      }
      const figures = {
        transport,
        open_to_sendable_ms: summary(opens),
        page_to_cli_ms: summary(toCli),
        cli_to_page_ms: summary(toPage),
      };
      console.log(`browser over ${transport}: open→sendable p50 ${figures.open_to_sendable_ms.p50} ms ` +
        `(max ${figures.open_to_sendable_ms.max}); page→CLI p50 ${figures.page_to_cli_ms.p50} ms, ` +
        `p95 ${figures.page_to_cli_ms.p95} ms; CLI→page p50 ${figures.cli_to_page_ms.p50} ms, ` +
        `p95 ${figures.cli_to_page_ms.p95} ms`);
      console.log(JSON.stringify({ bench: 'browser', ...figures }));
      await cli.stop();
    } finally {
      await relay.stop();
    }
  });
}
