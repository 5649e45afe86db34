import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { Diagnostic } from './diagnostic.ts';
import type { ConfigSnapshot } from './store.ts';
import { ConfigWatcher } from './watch.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-watch-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let count = 0;
const open: ConfigWatcher[] = [];
afterEach(() => {
  for (const w of open.splice(0)) w.close();
});

function freshDir(): string {
  const dir = path.join(tmpRoot, `d${count++}`);
  fs.mkdirSync(dir);
  return dir;
}

function watcher(paths: string[]): ConfigWatcher {
  const w = new ConfigWatcher(paths, { debounceMs: 40 });
  open.push(w);
  return w;
}

const dr = (name: string, host: string, extra = ''): string =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: ${name}\nspec:\n  host: ${host}\n${extra}`;

const hosts = (snap: ConfigSnapshot): string[] =>
  snap.list('DestinationRule').map((r) => `${r.metadata.name}=${r.spec.host.split('.')[0]}`);
const codes = (ds: readonly Diagnostic[]): string[] => ds.map((d) => d.code).sort();

/** The next snapshot, or a rejection after `ms`. */
function nextSnapshot(w: ConfigWatcher, ms = 5000): Promise<ConfigSnapshot> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no snapshot within ${ms} ms`)), ms);
    w.once('snapshot', (snapshot) => {
      clearTimeout(timer);
      resolve(snapshot);
    });
  });
}

/** The next change of diagnostics, or a rejection after `ms`. */
function nextDiagnostics(w: ConfigWatcher, ms = 5000): Promise<readonly Diagnostic[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no diagnostics within ${ms} ms`)), ms);
    w.once('diagnostics', (diagnostics) => {
      clearTimeout(timer);
      resolve(diagnostics);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ConfigWatcher: what a rescan serves', () => {
  it('starts with what the directory holds', () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'a.yaml'), `${dr('a', 'one')}---\n${dr('b', 'two')}`);
    const w = watcher([dir]);
    assert.equal(w.rescan(), true);
    assert.equal(w.snapshot.version, 1);
    assert.deepEqual(hosts(w.snapshot), ['a=one', 'b=two']);
    assert.equal(w.rescan(), false, 'nothing changed');
    assert.equal(w.snapshot.version, 1);
  });

  it('a resource that becomes invalid keeps its last valid version, with an error saying so', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, `${dr('a', 'one')}---\n${dr('b', 'two')}`);
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(
      file,
      `${dr('a', 'one', '  subsets: [{name: v1, labels: {version: 1}}]\n')}---\n${dr('b', 'three')}`,
    );
    assert.equal(w.rescan(), true, 'b changed');
    assert.deepEqual(hosts(w.snapshot), ['a=one', 'b=three']);
    assert.deepEqual(codes(w.diagnostics), ['IST0106', 'WE0009']);
    const kept = w.diagnostics.find((d) => d.code === 'WE0009');
    assert.equal(kept?.resource, 'DestinationRule default/a');
    assert.equal(kept?.severity, 'error');
    // Fixed: the new version is served and the errors go.
    fs.writeFileSync(file, `${dr('a', 'four')}---\n${dr('b', 'three')}`);
    assert.equal(w.rescan(), true);
    assert.deepEqual(hosts(w.snapshot), ['a=four', 'b=three']);
    assert.deepEqual(w.diagnostics, []);
  });

  it('a resource whose name is being edited (unreadable) is kept by its position', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, dr('a', 'one'));
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(file, dr('"A B"', 'one'));
    assert.equal(w.rescan(), false);
    assert.deepEqual(hosts(w.snapshot), ['a=one']);
    assert.deepEqual(codes(w.diagnostics), ['WE0007', 'WE0009']);
  });

  it('a file that stops parsing keeps all its last valid resources', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, `${dr('a', 'one')}---\n${dr('b', 'two')}`);
    fs.writeFileSync(path.join(dir, 'other.yaml'), dr('c', 'three'));
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(file, `${dr('a', 'one')}---\nkind: [broken\n`);
    fs.writeFileSync(path.join(dir, 'other.yaml'), dr('c', 'five'));
    assert.equal(w.rescan(), true, 'other.yaml still updates');
    assert.deepEqual(hosts(w.snapshot), ['a=one', 'b=two', 'c=five']);
    assert.deepEqual(codes(w.diagnostics), ['WE0002', 'WE0010']);
  });

  it('a removed document or file removes its resources', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, `${dr('a', 'one')}---\n${dr('b', 'two')}`);
    fs.writeFileSync(path.join(dir, 'c.yaml'), dr('c', 'three'));
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(file, dr('b', 'two'));
    assert.equal(w.rescan(), true);
    assert.deepEqual(hosts(w.snapshot), ['b=two', 'c=three']);
    fs.rmSync(path.join(dir, 'c.yaml'));
    assert.equal(w.rescan(), true);
    assert.deepEqual(hosts(w.snapshot), ['b=two']);
    assert.equal(w.snapshot.version, 3);
  });

  it('a new duplicate does not displace the resource already served', () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'b.yaml'), dr('a', 'served'));
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(path.join(dir, 'a.yaml'), dr('a', 'newcomer'));
    assert.equal(w.rescan(), false);
    assert.deepEqual(hosts(w.snapshot), ['a=served']);
    assert.deepEqual(
      w.diagnostics.map((d) => [d.code, path.basename(d.file ?? '')]),
      [['WE0008', 'a.yaml']],
    );
  });

  it('a change of comments or layout only is not a new snapshot', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, dr('a', 'one'));
    const w = watcher([dir]);
    w.rescan();
    fs.writeFileSync(file, `# a comment\n\n${dr('a', 'one')}`);
    assert.equal(w.rescan(), false);
  });
});

describe('ConfigWatcher: watching', () => {
  it('emits one snapshot for a burst of writes, after the debounce', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, dr('a', 'one'));
    const w = watcher([dir]);
    assert.deepEqual(hosts(w.start()), ['a=one']);
    let snapshots = 0;
    w.on('snapshot', () => snapshots++);
    const event = nextSnapshot(w);
    for (let i = 0; i < 5; i++) fs.writeFileSync(file, dr('a', `h${i}`));
    const snap = await event;
    assert.deepEqual(hosts(snap), ['a=h4']);
    assert.equal(snap.version, 2);
    await sleep(300);
    assert.equal(snapshots, 1);
  });

  it('sees new files in new subdirectories, and deletions', async () => {
    const dir = freshDir();
    const w = watcher([dir]);
    w.start();
    let event = nextSnapshot(w);
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'x.yaml'), dr('x', 'ex'));
    assert.deepEqual(hosts(await event), ['x=ex']);
    event = nextSnapshot(w);
    fs.rmSync(path.join(dir, 'sub'), { recursive: true });
    assert.deepEqual(hosts(await event), []);
  });

  it('follows editors that save by renaming a new file over the old one, also when watching single files', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, dr('a', 'one'));
    for (const paths of [[dir], [file]]) {
      const w = watcher(paths);
      w.start();
      for (const host of ['two', 'three']) {
        const event = nextSnapshot(w);
        const tmp = path.join(dir, `.a.yaml.${host}.tmp`);
        fs.writeFileSync(tmp, dr('a', host));
        fs.renameSync(tmp, file);
        assert.deepEqual(hosts(await event), [`a=${host}`]);
      }
      w.close();
      fs.writeFileSync(file, dr('a', 'one'));
    }
  });

  it('re-reads only the file that changed, and lists again when a file is added or removed', async () => {
    const dir = freshDir();
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `r${i}.yaml`), dr(`r${i}`, `h${i}`));
    const w = watcher([dir]);
    assert.equal(w.start().size, 200);
    assert.equal(w.filesRead, 200);
    let next = nextSnapshot(w);
    fs.writeFileSync(path.join(dir, 'r7.yaml'), dr('r7', 'changed'));
    assert.ok(hosts(await next).includes('r7=changed'));
    assert.equal(w.filesRead, 201);
    next = nextSnapshot(w);
    fs.writeFileSync(path.join(dir, 'extra.yaml'), dr('extra', 'h-extra'));
    assert.ok(hosts(await next).includes('extra=h-extra'));
    assert.equal(w.filesRead, 202);
    next = nextSnapshot(w);
    fs.rmSync(path.join(dir, 'r3.yaml'));
    const afterRemoval = await next;
    assert.equal(afterRemoval.size, 200);
    assert.ok(!hosts(afterRemoval).includes('r3=h3'));
    assert.equal(w.filesRead, 202);
    // A full rescan (polling) checks every file again, but reads none that did not change.
    w.rescan();
    assert.equal(w.filesRead, 202);
  });

  it('reports an invalid edit as diagnostics without a new snapshot', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, dr('a', 'one'));
    const w = watcher([dir]);
    w.start();
    let snapshots = 0;
    w.on('snapshot', () => snapshots++);
    const event = nextDiagnostics(w);
    fs.writeFileSync(file, `${dr('a', 'one')}---\nnot: [yaml\n`);
    const diagnostics = await event;
    assert.deepEqual(codes(diagnostics), ['WE0002', 'WE0010']);
    assert.deepEqual(hosts(w.snapshot), ['a=one']);
    assert.equal(snapshots, 0);
  });

  it('an edit of one file among many keeps the rules: invalid keeps the last valid, a new duplicate loses', async () => {
    const dir = freshDir();
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dir, `r${i}.yaml`), dr(`r${i}`, `h${i}`));
    const w = watcher([dir]);
    w.start();
    let snapshots = 0;
    w.on('snapshot', () => snapshots++);
    // Invalid: a DestinationRule without a host.
    let event = nextDiagnostics(w);
    fs.writeFileSync(
      path.join(dir, 'r5.yaml'),
      dr('r5', 'h5').replace(/\n {2}host: h5\n/, '\n  hostx: h5\n'),
    );
    assert.ok(codes(await event).includes('WE0009'));
    assert.equal(snapshots, 0);
    assert.ok(hosts(w.snapshot).includes('r5=h5'));
    // Fixed again: a new snapshot with the new value, and the diagnostics clear.
    event = nextDiagnostics(w);
    const next = nextSnapshot(w);
    fs.writeFileSync(path.join(dir, 'r5.yaml'), dr('r5', 'fixed'));
    assert.ok(hosts(await next).includes('r5=fixed'));
    assert.deepEqual(codes(await event), []);
    // Renamed to collide with r6: r6 keeps being served from its own file, r5 is gone, and it is said.
    event = nextDiagnostics(w);
    const renamed = nextSnapshot(w);
    fs.writeFileSync(path.join(dir, 'r5.yaml'), dr('r6', 'impostor'));
    const snap = await renamed;
    assert.ok(hosts(snap).includes('r6=h6'));
    assert.ok(!hosts(snap).some((h) => h.startsWith('r5=') || h === 'r6=impostor'));
    assert.deepEqual(codes(await event), ['WE0008']);
  });
});
