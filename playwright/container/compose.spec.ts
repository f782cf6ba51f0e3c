// deploy/compose.yaml brought up as an operator does (init.sh, then podman-compose up): two
// relays of one network and a Prometheus that scrapes both. A CLI peer on relay-a and a page on
// relay-b chat across the two relays, and Prometheus sees each relay linked to the other.
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ChatPage, CliPeer, Relay, freePort, test, expect } from '../tests/fixtures';

const IMAGE = process.env.P2P_CHAT_IMAGE;
const PROMETHEUS_IMAGE = process.env.P2P_CHAT_PROMETHEUS_IMAGE;
if (!IMAGE || !PROMETHEUS_IMAGE) {
  throw new Error('P2P_CHAT_IMAGE and P2P_CHAT_PROMETHEUS_IMAGE name the images to use: scripts/image.sh builds both');
}
process.env.CONTAINERS_CONF ??= resolve(__dirname, '..', '..', 'scripts', 'containers.conf');
const DEPLOY = resolve(__dirname, '..', '..', 'deploy');

/** A Prometheus query's answer: the value for each relay (`instance`). */
async function query(prometheus: string, expr: string): Promise<Record<string, string>> {
  try {
    const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = await res.json() as { data: { result: Array<{ metric: { instance: string }; value: [number, string] }> } };
    return Object.fromEntries(body.data.result.map((r) => [r.metric.instance, r.value[1]]));
  } catch {
    return {};
  }
}

async function healthz(url: string): Promise<string> {
  try { return (await (await fetch(`${url}/healthz`)).json()).status; } catch { return 'unreachable'; }
}

test('compose brings up two linked relays and a Prometheus scraping both; a page and a CLI peer chat across them', async ({ browser }) => {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-chat-compose-'));
  const project = `p2pchat-test-${process.pid}`;
  const compose = (...args: string[]) =>
    execFileSync('podman-compose', ['-p', project, ...args], { cwd: dir, stdio: 'pipe', encoding: 'utf8' });
  let cli: CliPeer | undefined;
  let up = false;
  try {
    for (const file of ['compose.yaml', 'prometheus.yml', 'init.sh']) copyFileSync(join(DEPLOY, file), join(dir, file));
    execFileSync('sh', [join(dir, 'init.sh'), dir], { env: { ...process.env, RELAY_IMAGE: IMAGE }, stdio: 'pipe' });
    const relayA = readFileSync(join(dir, '.env'), 'utf8').match(/^RELAY_A_ID=(\S+)$/m)?.[1];
    expect(relayA).toMatch(/^12D3KooW/);
    // Ports free on loopback, published there only: base P for TCP P and P+1, UDP P and P+2.
    const [a, b, http, prometheusPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    appendFileSync(join(dir, '.env'), [
      `RELAY_IMAGE=${IMAGE}`, `PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE}`, 'PUBLISH_ADDR=127.0.0.1',
      `RELAY_A_PORT=${a}`, `RELAY_A_WS_PORT=${a + 1}`, `RELAY_A_WEBRTC_PORT=${a + 2}`, `RELAY_A_HTTP_PORT=${http}`,
      `RELAY_B_PORT=${b}`, `RELAY_B_WS_PORT=${b + 1}`, `RELAY_B_WEBRTC_PORT=${b + 2}`, `RELAY_B_HTTP_PORT=${http + 1}`,
      `PROMETHEUS_PUBLISH=127.0.0.1:${prometheusPort}`, '',
    ].join('\n'));
    up = true;
    compose('up', '-d');
    const [webA, webB, prometheus] = [`http://127.0.0.1:${http}`, `http://127.0.0.1:${http + 1}`, `http://127.0.0.1:${prometheusPort}`];
    await expect.poll(() => healthz(webA), { timeout: 30_000 }).toBe('ok');
    await expect.poll(() => healthz(webB), { timeout: 30_000 }).toBe('ok');
    execFileSync('podman', ['healthcheck', 'run', `${project}_relay-b_1`], { stdio: 'pipe' });

    // A CLI peer on relay-a (its published TCP port), a page served by relay-b.
    cli = await CliPeer.start({ tcp: `/ip4/127.0.0.1/tcp/${a}/p2p/${relayA}` } as Relay, 'on-a');
    const page = await ChatPage.open(browser, `${webB}/`);
    await page.connected();
    await page.ready();
    await page.send('from relay-b');
    await cli.event('the message across the relays', (e) => e.event === 'message' && e.text === 'from relay-b');
    cli.send({ cmd: 'send', text: 'from relay-a' });
    await expect(page.message('from relay-a')).toBeVisible();

    // Prometheus scrapes both operator addresses (on the compose network only) and sees the link.
    await expect.poll(() => query(prometheus, 'p2p_chat_relay_peers'), { timeout: 60_000, intervals: [1_000] })
      .toEqual({ 'relay-a:8081': '1', 'relay-b:8081': '1' });
    expect(await query(prometheus, 'up')).toEqual({ 'relay-a:8081': '1', 'relay-b:8081': '1' });
    // The public addresses left empty in .env are none, not an empty one.
    for (const relay of ['relay-a', 'relay-b']) {
      const said = execFileSync('podman', ['logs', `${project}_${relay}_1`], { encoding: 'utf8', stdio: 'pipe' });
      expect(said).toMatch(/^peer id: /m);
      expect(said).not.toMatch(/^external: /m);
    }
    // The operator addresses are not published on the host.
    for (const relay of ['relay-a', 'relay-b']) {
      const published = execFileSync('podman', ['port', `${project}_${relay}_1`], { encoding: 'utf8' });
      expect(published).toContain('8080/tcp');
      expect(published).not.toMatch(/^8081\//m);
    }
  } finally {
    await cli?.stop();
    if (up) {
      try { compose('down', '-v'); } catch (e) { console.log(`podman-compose down: ${e}`); }
      try { execFileSync('podman', ['network', 'rm', `${project}_default`], { stdio: 'pipe' }); } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
