import tempfile
import unittest
from pathlib import Path

from harness import atomics

# Shaped like callgrind's own output with --dump-instr=yes (positions: instr line): compressed
# names, relative and repeated positions, and a call whose cost line is inclusive.
CALLGRIND = """# callgrind format
version: 1
positions: instr line
events: Ir

ob=(1) {obj}
fl=(1) src/lib.rs
fn=(1) app::counter::add
0x1100 10 {add_entry}
+4 * {add_entry}
+3 11 {add_lock}
cfn=(2) app::helper
calls=1 0x1200 20
+5 12 999
+5 * {add_entry}
fn=(2)
0x1200 20 {helper}
+7 * {helper}
"""

DISASSEMBLY = """
0000000000001100 <app::counter::add>:
    1100:	push   %rbp
    1104:	mov    %rdi,%rbp
    1107:	lock incq 0x10(%rdi)
    110c:	call   1200 <app::helper>
    1111:	ret

0000000000001200 <app::helper>:
    1200:	xchg   %eax,(%rbx)
    1207:	xchg   %eax,%ebx
"""


def callgrind(obj: str, requests: int) -> str:
    # Each request runs add once (its entry, its lock, its return) and helper once.
    return CALLGRIND.format(obj=obj, add_entry=requests + 3, add_lock=requests,
                            helper=requests + 1)


class ParseCosts(unittest.TestCase):
    def test_counts_each_address_of_each_function_leaving_out_inclusive_call_costs(self):
        costs = atomics.parse_costs(callgrind("/bin/app", 10))
        self.assertEqual(costs[("/bin/app", "app::counter::add", 0x1100)], 13)
        self.assertEqual(costs[("/bin/app", "app::counter::add", 0x1107)], 10)
        # The call line's 999 is the helper's inclusive cost, not an instruction at 0x110c.
        self.assertNotIn(("/bin/app", "app::counter::add", 0x110c), costs)
        self.assertEqual(costs[("/bin/app", "app::counter::add", 0x1111)], 13)
        # "fn=(2)" refers back to the name the call line defined.
        self.assertEqual(costs[("/bin/app", "app::helper", 0x1207)], 11)


class AtomicInstructions(unittest.TestCase):
    def test_lock_prefixes_and_xchg_with_memory_only(self):
        found = atomics.atomic_instructions(DISASSEMBLY)
        self.assertEqual(sorted(found), [0x1107, 0x1200])
        self.assertEqual(found[0x1107], "lock incq 0x10(%rdi)")

    def test_symbols_by_name(self):
        self.assertEqual(atomics.symbol_addresses(DISASSEMBLY),
                         {"app::counter::add": 0x1100, "app::helper": 0x1200})


class PerRequest(unittest.TestCase):
    def test_difference_of_two_runs_per_request_where_the_object_was_loaded(self):
        with tempfile.TemporaryDirectory() as tmp:
            obj = Path(tmp) / "app"
            obj.write_bytes(b"")
            loaded = 0x108000
            files = []
            for n in (100, 200):
                text = callgrind(str(obj), n)
                # Shift every absolute address as a loaded position-independent binary's.
                text = text.replace("0x1100", hex(0x1100 + loaded)).replace(
                    "0x1200", hex(0x1200 + loaded))
                path = Path(tmp) / f"callgrind.{n}"
                path.write_text(text)
                files.append(path)
            total, by_function = atomics.per_request(*files, 100,
                                                     disassembler=lambda _: DISASSEMBLY)
        # One lock incq in add, one xchg with memory in helper; the register xchg is not one.
        self.assertAlmostEqual(total, 2.0)
        self.assertEqual(by_function, {"app::counter::add": 1.0, "app::helper": 1.0})

    def test_an_object_whose_load_address_cannot_be_found_counts_nothing(self):
        costs = {("/bin/app", "unknown", 0x5000): 1}
        self.assertIsNone(atomics.load_offset(costs, "/bin/app", {"other": 0x100}))


if __name__ == "__main__":
    unittest.main()
