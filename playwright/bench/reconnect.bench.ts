// Coming back (a measurement that prints numbers, not a pass/fail test), over WebRTC-direct and
// over WebSocket, BENCH_RUNS times each (default 5):
// - reload: from `reload()` until the page can send, and until it shows a CLI peer's answer to
//   the message it sent;
// - reopen: the tab closed, a message sent meanwhile, the URL opened again 2 s later in the same
//   browser (the relay still holds the old connection): until it can send, and until it shows
//   the message it missed;
// - relay restart: the relay killed (SIGKILL) and started again 1 s later on the same ports:
//   from the relay listening again until the page can send, and until its message reaches a
//   second page (which also lost the relay and comes back by itself);
// - closed tab: until the relay's /healthz count and a CLI peer's member list lose it.
//
//   cd playwright && npx playwright test --config bench.config.ts reconnect
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { CliPeer, Relay, freePort, test } from '../tests/fixtures';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function summary(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1], n: s.length, runs: samples };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sendable(page: Page) {
  await page.waitForFunction(
    () => document.querySelector('[data-testid=composer]')?.getAttribute('data-ready') === 'true',
    null, { polling: 'raf', timeout: 60_000 });
}

async function shown(page: Page, text: string) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent?.includes(t)),
    text, { polling: 'raf', timeout: 60_000 });
}

async function shownWithin(page: Page, text: string, ms: number): Promise<boolean> {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent?.includes(t)),
    text, { polling: 'raf', timeout: ms }).then(() => true, () => false);
}

async function send(page: Page, text: string) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

async function open(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

async function healthzPeers(relay: Relay): Promise<number> {
  return (await (await fetch(relay.url + 'healthz')).json()).connected_peers;
}

async function bench(browser: Browser, transport: 'webrtc' | 'ws') {
  const relay = await Relay.start({ port: await freePort() });
  const cli = await CliPeer.start(relay, 'bench-cli');
  const context = await browser.newContext();
  try {
    let page = await open(context, relay.pageUrl(transport));
    await sendable(page);
    const figures: Record<string, number[]> = {
      reload_to_sendable_ms: [], reload_to_answer_ms: [],
      reopen_to_sendable_ms: [], reopen_to_missed_ms: [],
      kill_to_back_ms: [], kill_to_noticed_ms: [], restart_to_connected_ms: [],
      restart_to_sendable_ms: [], restart_to_delivered_ms: [],
      closed_to_gone_from_relay_ms: [], closed_to_gone_from_members_ms: [],
    };
    for (let i = 0; i < RUNS; i++) {
      // Reload.
      let t0 = Date.now();
      await page.reload();
      await sendable(page);
      figures.reload_to_sendable_ms.push(Date.now() - t0);
      await send(page, `reloaded ${i}`);
      await cli.event('the reloaded page', (e) => e.event === 'message' && e.text === `reloaded ${i}`, 60_000);
      cli.send({ cmd: 'send', text: `answer ${i}` });
      await shown(page, `answer ${i}`);
      figures.reload_to_answer_ms.push(Date.now() - t0);

      // Close the tab, miss a message, open the URL again 2 s later.
      await page.close();
      cli.send({ cmd: 'send', text: `missed ${i}` });
      await sleep(2_000);
      t0 = Date.now();
      page = await open(context, relay.pageUrl(transport));
      await sendable(page);
      figures.reopen_to_sendable_ms.push(Date.now() - t0);
      await shown(page, `missed ${i}`);
      figures.reopen_to_missed_ms.push(Date.now() - t0);
    }
    // A second page stays open through the relay restarts, to receive.
    const otherContext = await browser.newContext();
    const other = await open(otherContext, relay.pageUrl(transport));
    await sendable(other);
    for (let i = 0; i < RUNS; i++) {
      // The relay killed and back 1 s later.
      const noticed = page.waitForFunction(
        () => document.querySelector('[data-testid=composer]')?.getAttribute('data-ready') !== 'true',
        null, { polling: 'raf', timeout: 60_000 });
      await relay.kill();
      const killed = Date.now();
      const noticedAt = noticed.then(() => Date.now());
      await sleep(1_000);
      await relay.launch();
      const t0 = Date.now();
      figures.kill_to_noticed_ms.push(await noticedAt - killed);
      figures.kill_to_back_ms.push(t0 - killed);
      await page.waitForFunction(
        () => document.querySelector('[data-testid=status]')?.getAttribute('data-state') === 'connected',
        null, { polling: 'raf', timeout: 60_000 });
      figures.restart_to_connected_ms.push(Date.now() - t0);
      await sendable(page);
      figures.restart_to_sendable_ms.push(Date.now() - t0);
      const text = `after restart ${i}`;
      // The other page may still be coming back: send until a message reaches it.
      let delivered = false;
      for (let attempt = 0; attempt < 240 && !delivered; attempt++) {
        await send(page, `${text}.${attempt}`);
        delivered = await shownWithin(other, text, 250);
      }
      if (!delivered) throw new Error('the page did not chat again after the relay restart');
      figures.restart_to_delivered_ms.push(Date.now() - t0);
    }
    await otherContext.close();
    for (let i = 0; i < RUNS; i++) {
      // A second tab opens, and closes.
      const other = await browser.newContext();
      const leaving = await open(other, relay.pageUrl(transport));
      await sendable(leaving);
      const id = (await leaving.getByTestId('peer-id').textContent())!.trim();
      await cli.event('the second tab', (e) => e.event === 'member_joined' && e.peer === id, 60_000);
      const before = await healthzPeers(relay);
      const t0 = Date.now();
      await other.close();
      const members = cli.event('the second tab leaving', (e) => e.event === 'member_left' && e.peer === id, 60_000)
        .then(() => Date.now() - t0);
      while (await healthzPeers(relay) >= before) {
        if (Date.now() - t0 > 60_000) throw new Error('the closed tab stayed at the relay');
        await sleep(50);
      }
      figures.closed_to_gone_from_relay_ms.push(Date.now() - t0);
      figures.closed_to_gone_from_members_ms.push(await members);
    }
    const result = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, summary(v)]));
    console.log(`coming back over ${transport}: ` + Object.entries(result)
      .map(([k, v]) => `${k.replace(/_ms$/, '')} p50 ${v.p50} ms (max ${v.max})`).join('; '));
    console.log(JSON.stringify({ bench: 'reconnect', transport, ...result }));
  } finally {
    await context.close();
    await cli.stop();
    await relay.stop();
  }
}

for (const transport of ['webrtc', 'ws'] as const) {
  test(`coming back over ${transport}`, async ({ browser }) => {
    test.setTimeout(600_000);
    await bench(browser, transport);
  });
}
