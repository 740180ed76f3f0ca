"""Unit tests of the harness's own decoder of the login trail's blocks (scripts/test runs
them): blocks built by hand from the format's description, versions 1, 2 and 3. The
benchmark's audit checks then decode the blocks keycard writes."""

import unittest

from .audit import decode_block

AT = bytes([0x80, 0xC4, 0x9F, 0xD5, 0x0C])  # zigzag varint of 1,700,000,000
AT_PLUS_1 = bytes([0x82, 0xC4, 0x9F, 0xD5, 0x0C])  # 1,700,000,001
# ip "i", no account/integration/token/user/role, surface "s", path "/", Success, no detail
# (an empty one), no diagnosis.
REST = bytes([3, ord("i"), 0, 0, 0, 0, 0, 3, ord("s"), 3, ord("/"), 9]) + b"Success" + bytes([2, 0])


class DecodeBlock(unittest.TestCase):
    def test_version_1_holds_every_field_and_repeats(self):
        block = bytes([1]) + AT + b"\x120000010000000001" + REST + AT_PLUS_1 + bytes([1]) + REST
        records = decode_block(block)
        self.assertEqual([(r["at"], r["request_id"], r["ip"], r["status"]) for r in records],
                         [(1_700_000_000, "0000010000000001", "i", "Success"),
                          (1_700_000_001, "0000010000000001", "i", "Success")])

    def test_version_2_writes_differences(self):
        # at +1_700_000_000, id 0x10000000005 (zigzag 2 * value, + 1); then at -1 (zigzag 1),
        # id -2 (zigzag 3, + 1 = 4); then at +0, another id as a field.
        first_id = 2 * 0x10000000005 + 1
        varint = bytearray()
        while first_id >= 0x80:
            varint.append(first_id & 0x7F | 0x80)
            first_id >>= 7
        varint.append(first_id)
        block = (bytes([2]) + AT + bytes(varint) + REST + bytes([1, 4]) + REST
                 + bytes([0, 0, 5]) + b"abc" + REST)
        records = decode_block(block)
        self.assertEqual([(r["at"], r["request_id"]) for r in records],
                         [(1_700_000_000, "0000010000000005"),
                          (1_699_999_999, "0000010000000003"),
                          (1_699_999_999, "abc")])

    def test_version_3_writes_the_fields_that_changed(self):
        # The first record: at 5 (zigzag 10), id 7 (zigzag 14, + 1), then a mask of the token
        # name (bit 0), the path (1), the status (2), the detail (3), the IP (9) and the
        # surface (10), and those fields (n - 1 bytes each). The second: at +0, id +1
        # (zigzag 2, + 1), the token name alone changed. The third: the status and detail.
        mask = 1 | 2 | 4 | 8 | 1 << 9 | 1 << 10
        first = (bytes([10, 15, mask & 0x7F | 0x80, mask >> 7, 3]) + b"t1" + bytes([2]) + b"/"
                 + bytes([8]) + b"Success" + bytes([1, 2]) + b"i" + bytes([2]) + b"s")
        second = bytes([0, 3, 1, 3]) + b"t2"
        third = bytes([0, 3, 4 | 8, 8]) + b"Failure" + bytes([17]) + b"InvalidSignature"
        records = decode_block(bytes([3]) + first + second + third)
        self.assertEqual(
            [(r["at"], r["request_id"], r["token_name"], r["ip"], r["surface"], r["status"],
              r["detail"], r["account"], r["diagnosis"]) for r in records],
            [(5, "0000000000000007", "t1", "i", "s", "Success", "", None, None),
             (5, "0000000000000008", "t2", "i", "s", "Success", "", None, None),
             (5, "0000000000000009", "t2", "i", "s", "Failure", "InvalidSignature", None, None)])

    def test_damage_is_refused(self):
        with self.assertRaises(ValueError):
            decode_block(bytes([4]))
        with self.assertRaises(ValueError):  # a mask bit past the eleven fields
            decode_block(bytes([3, 0, 3, 0x80, 0x10]))
        with self.assertRaises(ValueError):  # a repeat in the first record
            decode_block(bytes([2, 0, 1, 1]) + REST[2:])


if __name__ == "__main__":
    unittest.main()
