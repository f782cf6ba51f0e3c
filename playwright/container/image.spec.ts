// The relay's container image as an operator runs it: podman, a named volume for its data, the
// configuration in P2P_CHAT_* variables, the health check. A page and a CLI peer on the host
// chat through the containerised relay; after a restart of the container the relay has the same
// identity and certhash and still serves the history.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ChatPage, CliPeer, Relay, freePort, relayLog, selfSignedCertificate, test, expect } from '../tests/fixtures';

const IMAGE = process.env.P2P_CHAT_IMAGE;
if (!IMAGE) throw new Error('P2P_CHAT_IMAGE is not set: build the image (scripts/image.sh --tag NAME) and name it');
// The settings podman needs in a container sandbox such as CI's (none of them matter elsewhere).
process.env.CONTAINERS_CONF ??= resolve(__dirname, '..', '..', 'scripts', 'containers.conf');

/** The uid the image runs the relay as (Containerfile's USER). */
const RELAY_UID = 65532;

function podman(...args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8' }).trim();
}

/** `p2p-chat relay` in a container of the image, on the host's network, its data on `volume`,
 * and its TLS certificate in `tlsDir` (mounted as the README's guide does). */
class ContainerRelay extends Relay {
  constructor(readonly name: string, readonly volume: string, port: number, readonly httpPort: number,
    readonly tlsDir: string, readonly wssPort: number) {
    super('', port, true);
  }

  async launch() {
    // `podman run` in the foreground: it passes SIGTERM on (stop()) and exits with the relay.
    // The health check runs when asked (`podman healthcheck run`): this machine has no systemd
    // to run its timer (podman says so twice on stderr).
    this.child = spawn('podman', [
      'run', '--rm', '--name', this.name, '--network', 'host', '--health-interval', 'disable',
      '--volume', `${this.volume}:/data`, '--volume', `${this.tlsDir}:/tls:ro`,
      '--env', 'P2P_CHAT_TLS_CERT=/tls/fullchain.pem', '--env', 'P2P_CHAT_TLS_KEY=/tls/privkey.pem',
      '--env', `P2P_CHAT_WSS_PORT=${this.wssPort}`,
      '--env', 'P2P_CHAT_LISTEN_ADDR=127.0.0.1', '--env', `P2P_CHAT_PORT=${this.port}`,
      '--env', `P2P_CHAT_HTTP_ADDR=127.0.0.1:${this.httpPort}`, '--env', `P2P_CHAT_ADMIN_ADDR=127.0.0.1:${this.httpPort + 1}`,
      '--env', `RUST_LOG=${relayLog()}`, IMAGE!,
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    await this.readAddresses();
  }

  /** Runs the image's health check now (it fails if the check does) and reads the state. */
  health(): string {
    podman('healthcheck', 'run', this.name);
    return podman('inspect', '--format', '{{.State.Health.Status}}', this.name);
  }

  /** A self-signed certificate for 127.0.0.1 in a directory only the relay's user reads, as the
   * README has an operator copy the ACME client's. */
  static certificate(): string {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-chat-e2e-tls-'));
    selfSignedCertificate(join(dir, 'fullchain.pem'), join(dir, 'privkey.pem'));
    chmodSync(dir, 0o700);
    for (const file of ['privkey.pem', 'fullchain.pem']) chmodSync(join(dir, file), 0o600);
    // As root (CI) the files go to the relay's uid; rootless podman maps it from its own.
    const owner = `${RELAY_UID}:${RELAY_UID}`;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', owner, dir]);
    else podman('unshare', 'chown', '-R', owner, dir);
    return dir;
  }

  /** The relay's process as the host sees it. */
  pid(): number { return Number(podman('inspect', '--format', '{{.State.Pid}}', this.name)); }
}

test('a page and a CLI peer chat through the containerised relay, which keeps identity, certhash and history across a restart', async ({ browser }) => {
  const suffix = `${process.pid}-${Date.now()}`;
  const volume = `p2p-chat-test-${suffix}`;
  let tls: string | undefined;
  let relay: ContainerRelay | undefined;
  let cli: CliPeer | undefined;
  try {
    podman('volume', 'create', volume);
    tls = ContainerRelay.certificate();
    // Fixed ports: the restarted relay must have the same addresses, as on a server.
    relay = new ContainerRelay(`p2p-chat-test-${suffix}`, volume, await freePort(), await freePort(), tls, await freePort());
    await relay.launch();
    expect(relay.url).toBe(`http://127.0.0.1:${relay.httpPort}/`);
    // The image's health check asks /healthz (p2p-chat health): healthy.
    expect(relay.health()).toBe('healthy');
    // Not root, and the volume is its own.
    const uid = readFileSync(`/proc/${relay.pid()}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    expect(Number(uid)).toBe(RELAY_UID);
    const mountpoint = podman('volume', 'inspect', '--format', '{{.Mountpoint}}', volume);
    expect(statSync(join(mountpoint, 'identity.key')).uid).toBe(RELAY_UID);

    cli = await CliPeer.start(relay, 'terminal');
    const page = await ChatPage.open(browser, relay.url);
    await page.connected();
    await page.ready();
    const pageId = await page.peerId();
    await cli.event('the page in the room', (e) => e.event === 'member_joined' && e.peer === pageId);
    await page.send('hello from the page');
    await cli.event('the page message', (e) => e.event === 'message' && e.text === 'hello from the page');
    await expect(page.message('hello from the page').getByTestId('stored')).toHaveText('✓✓');
    cli.send({ cmd: 'send', text: 'hello from the terminal' });
    await expect(page.message('hello from the terminal')).toBeVisible();
    const receipt = await cli.event('the store receipt', (e) => e.event === 'stored' || e.event === 'not_stored');
    expect(receipt.event, JSON.stringify(receipt)).toBe('stored');

    // Stopped as `podman stop` does: SIGTERM, and the relay ends cleanly.
    const [id, webrtc] = [relay.peerId, relay.webrtc];
    await relay.stop();
    expect(relay.child.exitCode).toBe(0);
    await relay.launch();
    expect(relay.peerId).toBe(id);
    expect(relay.webrtc).toBe(webrtc);
    expect(relay.health()).toBe('healthy');

    // A newcomer, over WebSocket with TLS (the certificate mounted read-only), gets the history
    // the container kept on its volume.
    expect(relay.wss).toContain(`/tcp/${relay.wssPort}/tls/ws/`);
    const newcomer = await ChatPage.open(browser, relay.pageUrl('wss'));
    await newcomer.connected();
    for (const text of ['hello from the page', 'hello from the terminal']) {
      await expect(newcomer.page.locator('[data-testid=message][data-history=true]').filter({ hasText: text })).toHaveCount(1);
    }
    // The CLI peer and the first page found the restarted relay again by themselves.
    await page.connected();
    cli.send({ cmd: 'send', text: 'after the restart' });
    await expect(newcomer.message('after the restart')).toBeVisible();
    await expect(page.message('after the restart')).toBeVisible();
    await newcomer.send('welcome back');
    await cli.event('the newcomer message', (e) => e.event === 'message' && e.text === 'welcome back');
  } finally {
    await cli?.stop();
    if (relay?.child) await relay.stop();
    podman('volume', 'rm', '--force', volume);
    if (tls) rmSync(tls, { recursive: true, force: true });
  }
});
