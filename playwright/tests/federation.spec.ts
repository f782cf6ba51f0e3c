// Several relays, one network: three relays that name each other, a CLI peer on A, a page on B
// and a CLI peer on C chat in one room every way, and DM each other across relays, the page
// (reachable only through its own relay) included, online and while it is closed.
import { ChatPage, CliPeer, Relay, freePort, test, expect } from './fixtures';

/**
 * Three relays that name each other, added to `relays` (for the caller to stop): on fixed ports,
 * each started once to learn its identity, then again naming the others (mail crosses only
 * links both operators chose).
 */
async function namingEachOther(relays: Relay[]): Promise<Relay[]> {
  for (let i = 0; i < 3; i++) relays.push(await Relay.start({ port: await freePort() }));
  for (const relay of relays) await relay.restartNaming(relays.filter((r) => r !== relay));
  return relays;
}

test('a page on one relay chats and exchanges DMs with CLI peers on two others', async ({ browser }) => {
  test.setTimeout(150_000);
  const relays: Relay[] = [];
  try {
    const [a, b, c] = await namingEachOther(relays);
    const alice = await CliPeer.start(a, 'alice');
    const carol = await CliPeer.start(c, 'carol');
    const page = await ChatPage.open(browser, b.pageUrl('webrtc'));
    await page.connected();
    await page.ready();
    const pageId = await page.peerId();

    // One room over three relays: everyone sees everyone, and every message arrives once.
    await expect(page.member(alice.peerId)).toBeVisible({ timeout: 40_000 });
    await expect(page.member(carol.peerId)).toBeVisible({ timeout: 40_000 });
    for (const [cli, other] of [[alice, carol], [carol, alice]] as const) {
      await cli.event('the page joins', (e) => e.event === 'member_joined' && e.peer === pageId, 40_000);
      await cli.event('the other peer joins', (e) => e.event === 'member_joined' && e.peer === other.peerId, 40_000);
    }
    await page.send('from the page on B');
    alice.send({ cmd: 'send', text: 'from alice on A' });
    carol.send({ cmd: 'send', text: 'from carol on C' });
    await expect(page.message('from alice on A')).toHaveCount(1);
    await expect(page.message('from carol on C')).toHaveCount(1);
    for (const [cli, others] of [[alice, ['from the page on B', 'from carol on C']], [carol, ['from the page on B', 'from alice on A']]] as const) {
      const seen = new Set<string>();
      while (seen.size < others.length) {
        const m = await cli.event('the others\' messages', (e) => e.event === 'message');
        expect(seen.has(m.text), `${m.text} shown twice`).toBe(false);
        expect(others).toContain(m.text);
        seen.add(m.text);
      }
    }
    await page.page.waitForTimeout(1000);
    await expect(page.message('from alice on A')).toHaveCount(1);
    await expect(page.message('from carol on C')).toHaveCount(1);

    // DMs across relays. To the page, reachable only through B: kept at A, taken by B.
    alice.send({ cmd: 'dm', peer: pageId, text: 'to the page, from A' });
    const kept = await alice.event('the DM kept', (e) => ['dm_stored', 'dm_delivered', 'dm_failed'].includes(e.event));
    expect(kept.event, JSON.stringify(kept)).toBe('dm_stored');
    // ("kept": it came by the mailbox.)
    await expect(page.dmLine('to the page, from A')).toHaveAttribute('data-state', 'received-kept');
    await alice.event('the DM fetched', (e) => e.event === 'dm_delivered' && e.id === kept.id);
    // From the page to carol on C, whom the page reaches only through the relays.
    await page.dm(carol.peerId, 'to carol, from the page');
    const dm = await carol.event('the page\'s DM', (e) => e.event === 'direct_message');
    expect([dm.text, dm.from]).toEqual(['to carol, from the page', pageId]);
    await expect(page.dmLine('to carol, from the page')).toHaveAttribute('data-state', /stored|delivered/);

    // While the page is closed: kept at C, taken by B when the page comes back, shown once.
    const context = page.page.context();
    await page.page.close();
    await carol.event('the page gone', (e) => e.event === 'member_left' && e.peer === pageId, 40_000);
    carol.send({ cmd: 'dm', peer: pageId, text: 'while you were away' });
    const away = await carol.event('the DM kept', (e) => ['dm_stored', 'dm_delivered', 'dm_failed'].includes(e.event));
    expect(away.event, JSON.stringify(away)).toBe('dm_stored');
    const back = new ChatPage(await context.newPage());
    await back.page.goto(b.pageUrl('webrtc'));
    await back.connected();
    expect(await back.peerId()).toBe(pageId);
    await expect(back.dmLine('while you were away')).toHaveCount(1, { timeout: 30_000 });
    await carol.event('the DM fetched', (e) => e.event === 'dm_delivered' && e.id === away.id);
    await back.page.waitForTimeout(2000);
    await expect(back.dmLine('while you were away')).toHaveCount(1);
    await alice.stop();
    await carol.stop();
  } finally {
    for (const relay of relays) await relay.stop();
  }
});

test('a page whose relay dies goes on with another relay of the network, and nothing is lost or shown twice', async ({ browser }) => {
  test.setTimeout(150_000);
  const relays: Relay[] = [];
  try {
    const [a, b, c] = await namingEachOther(relays);
    const alice = await CliPeer.start(a, 'alice');
    const carol = await CliPeer.start(c, 'carol');
    // The page loads from B, whose config.json lists A and C after B's own addresses (once
    // the links are up).
    const relayOf = (addr: string) => addr.slice(addr.lastIndexOf('/p2p/') + 5);
    const listed = async () => {
      const config = await (await fetch(b.url + 'config.json')).json();
      return [...new Set<string>(config.addrs.map(relayOf))];
    };
    await expect.poll(listed, { timeout: 40_000 }).toHaveLength(3);
    const order = await listed();
    expect(order[0]).toBe(b.peerId);
    expect(new Set(order)).toEqual(new Set([a.peerId, b.peerId, c.peerId]));
    const page = await ChatPage.open(browser, b.url);
    await page.connected();
    await page.ready();
    const pageId = await page.peerId();
    await expect(page.member(alice.peerId)).toBeVisible({ timeout: 40_000 });
    await expect(page.member(carol.peerId)).toBeVisible({ timeout: 40_000 });
    await page.send('before B died');
    await alice.event('the page\'s first message', (e) => e.event === 'message' && e.text === 'before B died', 40_000);

    // B dies: the page takes the next relay within seconds, and chats on.
    await b.kill();
    const killed = Date.now();
    alice.send({ cmd: 'send', text: 'sent while B was dying' });
    await expect(page.status()).not.toContainText(b.peerId.slice(-6), { timeout: 30_000 });
    await expect(page.status()).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
    console.log(`failover: the page was connected to another relay ${Date.now() - killed} ms after its relay was killed`);
    // And says so, although B is still retried (and failing) behind it.
    await page.page.waitForTimeout(3000);
    await expect(page.status()).toHaveAttribute('data-state', 'connected');
    await page.ready();
    await expect(page.message('sent while B was dying')).toHaveCount(1, { timeout: 30_000 });
    await page.send('the page, on another relay');
    await alice.event('the page after the failover', (e) => e.event === 'message' && e.text === 'the page, on another relay', 30_000);
    await carol.event('the page after the failover', (e) => e.event === 'message' && e.text === 'the page, on another relay', 30_000);
    carol.send({ cmd: 'send', text: 'carol to the page on its new relay' });
    await expect(page.message('carol to the page on its new relay')).toHaveCount(1);
    alice.send({ cmd: 'dm', peer: pageId, text: 'a DM after B died' });
    await expect(page.dmLine('a DM after B died')).toHaveCount(1, { timeout: 30_000 });
    await page.page.waitForTimeout(2000);
    for (const text of ['before B died', 'sent while B was dying', 'the page, on another relay', 'carol to the page on its new relay']) {
      await expect(page.message(text)).toHaveCount(1);
    }

    // B back: the page goes back to it (and leaves the other relay), and chats on.
    await b.launch();
    await expect(page.status()).toContainText(b.peerId.slice(-6), { timeout: 30_000 });
    await expect(page.status()).toHaveAttribute('data-state', 'connected');
    await page.send('the page, back on B');
    await alice.event('the page back on B', (e) => e.event === 'message' && e.text === 'the page, back on B', 30_000);
    // B caught up by reconciliation (on its links, within seconds), so a newcomer on B is shown
    // what was said while it was down: asked again until it is.
    const missed = ['sent while B was dying', 'the page, on another relay', 'carol to the page on its new relay'];
    const deadline = Date.now() + 40_000;
    let shown = new Set<string>();
    while (!missed.every((t) => shown.has(t))) {
      expect(Date.now() < deadline, `B's history after its restart: ${[...shown]}`).toBe(true);
      const newcomer = await CliPeer.start(b, 'newcomer');
      const history = await newcomer.event('history from B', (e) => e.event === 'history' && e.done);
      shown = new Set<string>(history.messages.map((m: any) => m.text));
      await newcomer.stop();
      if (!missed.every((t) => shown.has(t))) await new Promise((r) => setTimeout(r, 2000));
    }
    await alice.stop();
    await carol.stop();
  } finally {
    for (const relay of relays) await relay.stop();
  }
});
