// Processes and page objects for the end-to-end tests: a real `p2p-chat relay` serving the
// built app, real `p2p-chat peer --json` CLI peers, and the page in headless Chromium.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { test as base, expect, Page, Browser } from '@playwright/test';

/** The pages opened during the current test. */
const opened: ChatPage[] = [];

/**
 * Playwright's `test`, failing any test in which a page threw an uncaught error (a `pageerror`):
 * every spec imports it from here.
 */
export const test = base.extend<{ noPageErrors: void }>({
  noPageErrors: [async ({}, use) => {
    opened.length = 0;
    await use();
    const errors = opened.flatMap((page) => page.errors);
    expect(errors, 'uncaught page errors').toEqual([]);
  }, { auto: true }],
});
export { expect };

const repo = resolve(__dirname, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
export const BIN = process.env.P2P_CHAT_BIN ?? join(targetDir, 'debug', 'p2p-chat');
const WEB_DIR = process.env.P2P_CHAT_WEB_DIR ?? join(repo, 'dist');
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build it (cargo build -p p2p-chat) or set P2P_CHAT_BIN`);
if (!existsSync(join(WEB_DIR, 'index.html'))) throw new Error(`${WEB_DIR} has no built app: run trunk build`);

/** Lines of a child's stdout, waited on with a predicate. */
class Lines {
  private lines: string[] = [];
  private waiters: Array<() => void> = [];
  constructor(child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  /** The first line from `from` on that matches, and the index after it. */
  async find(what: string, pick: (line: string) => boolean, from = 0, timeoutMs = 30_000): Promise<[string, number]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) if (pick(this.lines[i])) return [this.lines[i], i + 1];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; output so far:\n${this.lines.slice(-20).join('\n')}`);
      await new Promise<void>((res) => { const t = setTimeout(res, left); this.waiters.push(() => { clearTimeout(t); res(); }); });
    }
  }
}

function bindable(port: number, kind: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((res) => {
    if (kind === 'tcp') {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
    } else {
      const s = createSocket('udp4');
      s.once('error', () => { s.close(); res(false); });
      s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
    }
  });
}

/** A base port P whose relay ports are all free: TCP P and P+1 (/ws), UDP P (QUIC) and P+2 (WebRTC). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const free = await Promise.all([bindable(port, 'tcp'), bindable(port + 1, 'tcp'), bindable(port, 'udp'), bindable(port + 2, 'udp')]);
    if (free.every(Boolean)) return port;
  }
  throw new Error('no free port range for a relay');
}

/** The relay's log filter in the tests: RELAY_LOG replaces it (RUST_LOG syntax), to see what
 * a relay did in a test. */
export function relayLog(): string {
  return process.env.RELAY_LOG ?? 'warn,libp2p_gossipsub::behaviour=error,libp2p_kad=error,dtls=error,webrtc=error,webrtc_ice=error,webrtc_sctp=error';
}

/** A self-signed certificate for 127.0.0.1 (a day long) at `cert`, its key at `key`. */
export function selfSignedCertificate(cert: string, key: string) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=127.0.0.1', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
}

export class Relay {
  child!: ChildProcess;
  url = ''; admin = ''; peerId = ''; tcp = ''; ws = ''; webrtc = ''; wss = '';
  /** The other relays it names (`--peer`), by their TCP addresses. */
  peers: string[] = [];
  constructor(readonly dataDir: string, readonly port: number, readonly tls: boolean) {}

  /** `tls`: a self-signed certificate for 127.0.0.1, so the relay also listens on `/tls/ws`. */
  static async start(opts: { dataDir?: string; port?: number; tls?: boolean } = {}): Promise<Relay> {
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'p2p-chat-e2e-relay-'));
    const relay = new Relay(dataDir, opts.port ?? 0, opts.tls ?? false);
    await relay.launch();
    return relay;
  }

  /** Stops it and starts it again naming `peers` (same data directory, so the same identity). */
  async restartNaming(peers: Relay[]) {
    await this.stop();
    this.peers = peers.map((p) => p.tcp);
    await this.launch();
  }

  async launch() {
    const tlsArgs: string[] = [];
    if (this.tls) {
      const [cert, key] = [join(this.dataDir, 'tls-cert.pem'), join(this.dataDir, 'tls-key.pem')];
      selfSignedCertificate(cert, key);
      tlsArgs.push('--tls-cert', cert, '--tls-key', key);
    }
    this.child = spawn(BIN, [
      'relay', '--listen-addr', '127.0.0.1', '--port', String(this.port), '--http-addr', '127.0.0.1:0', '--admin-addr', '127.0.0.1:0',
      '--web-dir', WEB_DIR, '--data-dir', this.dataDir, ...tlsArgs, ...this.peers.flatMap((p) => ['--peer', p]),
    ], { env: { ...process.env, RUST_LOG: relayLog() }, stdio: ['ignore', 'pipe', 'inherit'] });
    await this.readAddresses();
  }

  /** Reads what the relay prints as it starts: its peer id, web and operator addresses, and
   * the addresses it listens on. */
  protected async readAddresses() {
    const lines = new Lines(this.child);
    this.peerId = (await lines.find('relay peer id', (l) => l.startsWith('peer id: ')))[0].slice(9);
    this.url = (await lines.find('relay web address', (l) => l.startsWith('web app: ')))[0].slice(9) + '/';
    // "monitor: http://127.0.0.1:PORT/ and metrics: ...": the operator's address.
    this.admin = (await lines.find('relay monitor address', (l) => l.startsWith('monitor: ')))[0].split(' ')[1];
    const addr = async (what: string, test: (a: string) => boolean) =>
      (await lines.find(what, (l) => l.startsWith('listening: ') && test(l.slice(11))))[0].slice(11);
    this.webrtc = await addr('webrtc-direct address', (a) => a.includes('/webrtc-direct/certhash/'));
    this.ws = await addr('websocket address', (a) => a.includes('/ws/') && !a.includes('/tls/'));
    if (this.tls) this.wss = await addr('websocket-over-TLS address', (a) => a.includes('/tls/ws/'));
    this.tcp = await addr('tcp address', (a) => a.includes('/tcp/') && !a.includes('/ws'));
  }

  /** The page URL that makes the browser use one transport. */
  pageUrl(transport: 'webrtc' | 'ws' | 'wss' | 'auto'): string {
    if (transport === 'auto') return this.url;
    const addr = { webrtc: this.webrtc, ws: this.ws, wss: this.wss }[transport];
    return `${this.url}?relay=${encodeURIComponent(addr)}`;
  }

  async stop() { await this.signal('SIGTERM'); }

  /** Kills it at once (SIGKILL): no goodbye to anyone. */
  async kill() { await this.signal('SIGKILL'); }

  private async signal(signal: NodeJS.Signals) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((res) => this.child.once('exit', res));
    this.child.kill(signal);
    await exited;
  }
}

export class CliPeer {
  child!: ChildProcess;
  lines!: Lines;
  cursor = 0;
  peerId = '';
  static async start(relay: Relay, nick: string): Promise<CliPeer> {
    const peer = new CliPeer();
    const dir = mkdtempSync(join(tmpdir(), 'p2p-chat-e2e-peer-'));
    peer.child = spawn(BIN, ['peer', '--relay', relay.tcp, '--nick', nick, '--json', '--no-mdns', '--no-upnp',
      '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    peer.lines = new Lines(peer.child);
    peer.peerId = (await peer.event('ready', (e) => e.event === 'ready')).peer_id;
    return peer;
  }
  /** The next JSON event (after the previous one returned) that matches. */
  async event(what: string, pick: (e: any) => boolean, timeoutMs = 30_000): Promise<any> {
    const [line, next] = await this.lines.find(what, (l) => { try { return pick(JSON.parse(l)); } catch { return false; } }, this.cursor, timeoutMs);
    this.cursor = next;
    return JSON.parse(line);
  }
  send(command: object) { this.child.stdin!.write(JSON.stringify(command) + '\n'); }
  async stop() { if (this.child.exitCode === null) { const e = new Promise((r) => this.child.once('exit', r)); this.child.kill('SIGTERM'); await e; } }
}

/** A chat page: the page object the specs drive. */
export class ChatPage {
  errors: string[] = [];
  constructor(readonly page: Page) {
    // Every page error fails the test (`test` above).
    page.on('pageerror', (e) => { this.errors.push(e.message); console.log('page error:', e.stack); });
    opened.push(this);
  }
  static async open(browser: Browser, url: string): Promise<ChatPage> {
    // The /wss test's relay has a self-signed certificate.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const chat = new ChatPage(await context.newPage());
    await chat.page.goto(url);
    return chat;
  }
  status() { return this.page.getByTestId('status'); }
  async connected() { await expect(this.status()).toHaveAttribute('data-state', 'connected'); }
  async ready() { await expect(this.page.getByTestId('composer')).toHaveAttribute('data-ready', 'true'); }
  async peerId(): Promise<string> { return (await this.page.getByTestId('peer-id').textContent())!.trim(); }
  async nick(): Promise<string> { return (await this.page.getByTestId('nick').textContent())!.trim(); }
  async setNick(nick: string) {
    await this.page.getByTestId('nick-input').fill(nick);
    await this.page.getByTestId('nick-input').press('Enter');
    await expect(this.page.getByTestId('nick')).toHaveText(nick);
  }
  async send(text: string) {
    await this.page.getByTestId('composer').fill(text);
    await this.page.getByTestId('composer').press('Enter');
  }
  message(text: string) { return this.page.getByTestId('message').filter({ hasText: text }); }
  member(peerId: string) { return this.page.locator(`[data-testid=member][data-peer="${peerId}"]`); }
  async dm(peerId: string, text: string) {
    await this.member(peerId).getByTestId('dm-button').click();
    await this.page.getByTestId('dm-input').fill(text);
    await this.page.getByTestId('dm-input').press('Enter');
  }
  dmLine(text: string) { return this.page.getByTestId('dm').filter({ hasText: text }); }
  async close() { await this.page.context().close(); }
}
