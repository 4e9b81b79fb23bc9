#!/usr/bin/python3
"""s2s_sessions.py: checks the per-session lines of a proxy log (design.md §9) for s2s tests.

    s2s_sessions.py LOG [--since N] [--need LISTENER=COUNT ...] [--open LISTENER=COUNT ...]

Every session in LOG (lines after the first N; each session line carries "conn=ID" and
"listener=NAME") must have exactly one close line (" close reason=") and at most one open line
(" open "; s2s sessions refused before authentication, dialback callbacks and the backend's
verification-only streams never open), and no INFO-or-louder line after its close line.
--need LISTENER=COUNT: exactly COUNT sessions on that listener. --open LISTENER=COUNT: exactly
COUNT of them logged an open line. Prints one summary line per session (id, listener, end
reason) and the reasons it failed; exit status 0 when every check holds, 1 otherwise.
"""

import argparse
import re
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("log")
    p.add_argument("--since", type=int, default=0, help="skip the first N lines")
    p.add_argument("--need", action="append", default=[], metavar="LISTENER=COUNT")
    p.add_argument("--open", action="append", default=[], metavar="LISTENER=COUNT")
    args = p.parse_args()

    sessions = {}  # id -> {"listener", "open": [...], "close": [...], "after": [...]}
    with open(args.log, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()[args.since:]
    for line in lines:
        m = re.search(r"\bconn=(\d+) listener=(\S+)", line)
        if not m:
            continue
        s = sessions.setdefault(m.group(1), {"listener": m.group(2), "open": [], "close": [],
                                             "after": []})
        if " close reason=" in line:
            s["close"].append(line.rstrip())
        elif re.search(r" open( |$)", line):
            s["open"].append(line.rstrip())
        elif s["close"] and not re.search(r"Z debug ", line):
            s["after"].append(line.rstrip())

    bad = []
    for cid, s in sorted(sessions.items(), key=lambda kv: int(kv[0])):
        reason = "-"
        if s["close"]:
            m = re.search(r"close reason=(\S+)", s["close"][0])
            reason = m.group(1) if m else "?"
        print(f"  conn={cid} listener={s['listener']} open={len(s['open'])} "
              f"close={len(s['close'])} reason={reason}")
        if len(s["close"]) != 1:
            bad.append(f"conn={cid}: {len(s['close'])} close lines, expected 1")
        if len(s["open"]) > 1:
            bad.append(f"conn={cid}: {len(s['open'])} open lines, expected at most 1")
        for line in s["after"]:
            bad.append(f"conn={cid}: logged after its close line: {line}")
    for spec, key in [(x, "need") for x in args.need] + [(x, "open") for x in args.open]:
        lst, _, n = spec.partition("=")
        ss = [s for s in sessions.values() if s["listener"] == lst]
        got = len(ss) if key == "need" else sum(1 for s in ss if s["open"])
        if got != int(n):
            what = "sessions" if key == "need" else "opened sessions"
            bad.append(f"{got} {what} on listener {lst}, expected {n}")
    for b in bad:
        print("s2s_sessions: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
