"""Atomic read-modify-writes per request, from callgrind's per-instruction counts.

An instruction count weighs every instruction alike, but an atomic read-modify-write (an x86
instruction with a `lock` prefix, or `xchg` with memory, which is locked without one) is not
like the others: it waits for every earlier store to reach the cache before it completes, about
23 cycles when nothing else is pending (9 ns a `fetch_add` in a loop on the 2.6 GHz Xeon of
the thirty-third session, against 0.6 ns for the same add on a plain integer), more after stores
that missed. Uncontended locks, `Arc` clones and metric counters are each one or two of them,
and a request runs through dozens, so the count of instructions hides a cost of some hundreds of
nanoseconds a request. On many cores each one on a line other cores write also moves that
line between them.

callgrind run with `--dump-instr=yes` counts each instruction address; this module finds the
addresses of the atomic instructions in each object with `objdump -d`, works out where the
object was loaded (callgrind's addresses are the running process's), and sums their counts
by function.
"""

import collections
import re
import subprocess
from pathlib import Path

# A `lock`-prefixed instruction, or `xchg` with a memory operand (AT&T syntax: parentheses).
ATOMIC = re.compile(r"^lock\b|^xchg\w*\s.*\(")

Costs = dict[tuple[str, str, int], int]


def parse_costs(text: str) -> Costs:
    """Instructions executed at each (object, function, address) of a callgrind file written
    with `--dump-instr=yes`: the first event (`Ir`) of each cost line, self cost only (the
    cost line after `calls=` is the call's inclusive cost). A cost line starts with one
    column per position (`positions: instr line`); only the address is kept."""
    names: dict[tuple[str, str], str] = {}

    def name(kind: str, spec: str) -> str:
        # Compressed names: "(3) full name" defines id 3, "(3)" refers to it.
        m = re.match(r"\((\d+)\)(?: (.*))?$", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), spec)

    costs: Costs = collections.Counter()
    positions = 1
    obj = fn = ""
    last = 0
    after_calls = False
    for line in text.splitlines():
        if not line:
            continue
        head = line[0]
        if head.isalpha():
            key, _, value = line.partition("=")
            if key == "ob":
                obj = name("ob", value)
            elif key == "fn":
                fn = name("fn", value)
            elif key == "cob":
                name("ob", value)
            elif key == "cfn":
                name("fn", value)
            elif key == "calls":
                after_calls = True
            elif line.startswith("positions:"):
                positions = len(line.split()) - 1
            continue
        if head not in "+-*0123456789":
            continue
        fields = line.split()
        position = fields[0]
        if position == "*":
            address = last
        elif head in "+-":
            address = last + int(position, 0)  # int() reads the sign
        else:
            address = int(position, 0)
        last = address
        if after_calls:
            after_calls = False
            continue
        if len(fields) > positions:
            costs[(obj, fn, address)] += int(fields[positions])
    return costs


def atomic_instructions(disassembly: str) -> dict[int, str]:
    """Address → text of each atomic read-modify-write in `objdump -d --no-show-raw-insn`'s
    output."""
    found = {}
    for line in disassembly.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(.+)$", line)
        if m and ATOMIC.search(m.group(2).strip()):
            found[int(m.group(1), 16)] = m.group(2).strip()
    return found


def symbol_addresses(disassembly: str) -> dict[str, int]:
    """Function name → address, from the `<name>:` headers of `objdump -d -C`'s output."""
    return {m.group(2): int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+) <(.+)>:$", disassembly, re.M)}


def load_offset(costs: Costs, obj: str, symbols: dict[str, int]) -> int | None:
    """Where `obj` was loaded: the difference between the lowest address callgrind counted in
    a function and that function's address in the file, taken from the functions whose entry
    ran (the commonest difference wins)."""
    lowest: dict[str, int] = {}
    for (o, fn, address) in costs:
        if o == obj and (fn not in lowest or address < lowest[fn]):
            lowest[fn] = address
    votes = collections.Counter(address - symbols[fn] for fn, address in lowest.items()
                                if fn in symbols)
    return votes.most_common(1)[0][0] if votes else None


def disassemble(obj: str) -> str:
    return subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", obj],
                          capture_output=True, text=True, check=True).stdout


def per_request(once: Path, twice: Path, n: int, disassembler=disassemble
                ) -> tuple[float, dict[str, float]]:
    """Atomic read-modify-writes per request between callgrind files of n and 2n requests, in
    all and by function (those of at least 0.01 a request)."""
    before, after = parse_costs(once.read_text()), parse_costs(twice.read_text())
    by_function: dict[str, float] = collections.Counter()
    for obj in sorted({o for (o, _, _) in after}):
        if not obj or not Path(obj).is_file():
            continue
        disassembly = disassembler(obj)
        atomics = atomic_instructions(disassembly)
        offset = load_offset(after, obj, symbol_addresses(disassembly)) if atomics else None
        if offset is None:
            continue
        for (o, fn, address), count in after.items():
            if o == obj and address - offset in atomics:
                by_function[fn] += (count - before.get((o, fn, address), 0)) / n
    kept = {fn: v for fn, v in sorted(by_function.items(), key=lambda kv: -kv[1]) if v >= 0.01}
    return sum(by_function.values()), kept
