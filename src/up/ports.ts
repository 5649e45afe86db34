/** Free ports for `weft up`, and checks that the fixed ones are free, before anything starts. */
import fs from 'node:fs';
import net from 'node:net';

/**
 * The start of the kernel's ephemeral range: ports below it are never handed to outgoing connections, so a
 * port found free there stays free until the component that was planned for it binds it.
 */
function ephemeralFloor(): number {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    if (Number.isInteger(n) && n > 11_000) return n;
  } catch {
    // not Linux
  }
  return 32_768;
}

export function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** `count` distinct ports that are free on 127.0.0.1 now, none of them in `avoid`. */
export async function freePorts(count: number, avoid: ReadonlySet<number> = new Set()): Promise<number[]> {
  const floor = ephemeralFloor();
  const picked = new Set<number>();
  let tries = 0;
  while (picked.size < count) {
    if (++tries > count * 50 + 1000) throw new Error('cannot find enough free ports on 127.0.0.1');
    const port = 10_000 + Math.floor(Math.random() * (floor - 10_000));
    if (picked.has(port) || avoid.has(port)) continue;
    if (await canBind(port)) picked.add(port);
  }
  return [...picked];
}
