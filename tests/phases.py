#!/usr/bin/env python3
"""Prints CI's time table: the phases tests/phase.sh recorded, the slow tests
(VM boots and installs, the image rebuild) from nextest's JUnit report, and
the total. Arguments: PHASES_FILE JUNIT_XML TOTAL_SECONDS."""
import sys
import xml.etree.ElementTree as ET


def fmt(secs):
    secs = int(round(secs))
    return f"{secs // 60:3d} min {secs % 60:02d} s"


def main():
    phases, junit, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = []
    with open(phases) as f:
        for line in f:
            name, secs, rc = line.rstrip("\n").split("\t")
            rows.append((name, float(secs), "" if rc == "0" else f"  (exit {rc})"))
    for name, secs, note in rows:
        print(f"  {name:<58} {fmt(secs)}{note}")
    slow = []
    try:
        for case in ET.parse(junit).getroot().iter("testcase"):
            cls, name = case.get("classname", ""), case.get("name", "")
            if cls.startswith("vmtest") or "reproducible" in name:
                failed = case.find("failure") is not None or case.find("error") is not None
                slow.append((f"{cls} {name}", float(case.get("time", 0)), "  FAILED" if failed else ""))
    except (OSError, ET.ParseError):
        pass
    if slow:
        print("  slow tests (inside the nextest phases):")
        for name, secs, note in sorted(slow, key=lambda r: -r[1]):
            print(f"    {name[-56:]:<56} {fmt(secs)}{note}")
    print(f"  {'total':<58} {fmt(total)}")


if __name__ == "__main__":
    main()
