import * as fs from "node:fs";

/**
 * The process tree as Linux's /proc shows it, zombies left out (an orphan's
 * zombie may linger where the machine's init does not reap): what the bench
 * and the `npm start` test use to find what a run started and what is left.
 */

/** Live processes from /proc (Linux): pid, parent, group and CPU ticks so far; zombies left out. */
export function processes():
  | { pid: number; ppid: number; pgrp: number; ticks: number }[]
  | undefined {
  if (!fs.existsSync("/proc/self/stat")) return undefined;
  const out = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp ... utime stime; comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (f[0] === "Z") continue;
    out.push({ pid: Number(pid), ppid: Number(f[1]), pgrp: Number(f[2]), ticks: +f[11] + +f[12] });
  }
  return out;
}

/** `root` and its live descendants (just `root` where there is no /proc). */
export function tree(root: number, all = processes()): Set<number> {
  const found = new Set([root]);
  for (let grew = true; grew && all; ) {
    grew = false;
    for (const p of all) {
      if (found.has(p.ppid) && !found.has(p.pid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return found;
}

/**
 * Which of `pids` are still alive. On Linux it reads /proc and skips zombies,
 * since an orphan's zombie may linger when the machine's init does not reap.
 */
export function alive(pids: Set<number>): number[] {
  const all = processes();
  if (all) return all.filter((p) => pids.has(p.pid)).map((p) => p.pid);
  return [...pids].filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}
