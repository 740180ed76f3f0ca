"""Unit tests of the core-scaling and A/B harnesses' arithmetic (scripts/test runs them): how
the CPUs are split between server and generator, the A/B table's medians, and the cores a
run kept busy. Synthetic runs, no servers."""

import os
import unittest
from types import SimpleNamespace
from unittest import mock

from . import ab, scaling
from .config import Env


def run(cores: int, build: str, rps: float, cpu_us: float = 10.0, user_us=None) -> dict:
    return {"server_cores": cores, "build": build, "rps": rps, "p99_us": 300.0,
            "cpu_us_per_request": cpu_us, "generator_cpu_util": 1.0, "others_on_cpus": 0.0,
            "user_us_per_request": user_us, "system_us_per_request": None}


class SplitCpus(unittest.TestCase):
    base = Env(server_cpus="0", loadgen_cpus="1", tokens=100, connections=64, port_base=18910)

    def split(self, n: int, nproc: int):
        with mock.patch.dict(os.environ, {}):
            env, shared = scaling.split_cpus(self.base, n, nproc)
            self.assertEqual(os.environ["SERVER_CPUS"], env.server_cpus)
        return env.server_cpus, env.loadgen_cpus, shared

    def test_the_generator_gets_the_cpus_the_server_does_not(self):
        self.assertEqual(self.split(1, 16), ("0", "1-15", False))
        self.assertEqual(self.split(8, 16), ("0-7", "8-15", False))
        self.assertEqual(self.split(15, 16), ("0-14", "15", False))

    def test_all_the_cpus_for_the_server_are_shared_with_the_generator(self):
        self.assertEqual(self.split(16, 16), ("0-15", "0-15", True))


class AbTable(unittest.TestCase):
    def test_the_ratio_is_of_each_builds_median(self):
        # Three rounds each, so a mean (140,000 both) would differ from the medians.
        runs = [run(8, "before", 100_000), run(8, "after", 150_000), run(8, "after", 130_000),
                run(8, "before", 120_000), run(8, "before", 200_000), run(8, "after", 140_000),
                run(8, "bare", 200_000)]
        meta = {"date": "2026-11-30", "host": "test", "cpu_model": "cpu"}
        table = ab.table(meta, SimpleNamespace(connections=64, tokens=100), 16, runs)
        self.assertIn("| 8 | 120,000 | 140,000 | 1.17× | 200,000 | – | – |", table)

    def test_user_time_is_compared_pair_by_pair(self):
        # Alternated as the harness runs them: before, after; after, before; before, after.
        runs = [run(1, "before", 90_000, user_us=4.6), run(1, "after", 80_000, user_us=4.3),
                run(1, "after", 95_000, user_us=4.5), run(1, "before", 85_000, user_us=4.4),
                run(1, "before", 88_000, user_us=4.7), run(1, "after", 91_000, user_us=4.2),
                run(1, "bare", 150_000, user_us=1.0)]
        meta = {"date": "2026-12-01", "host": "test", "cpu_model": "cpu"}
        table = ab.table(meta, SimpleNamespace(connections=16, tokens=100), 2, runs)
        # Medians 4.60 and 4.30; after lower in the first and third pairs, not the second.
        self.assertIn("| 1 | 88,000 | 91,000 | 1.03× | 150,000 | 4.60 → 4.30 | 2 of 3 |", table)
        self.assertIn("| 1 | after | 80,000 | 0.8 | 300 µs | 10.00 µs | 4.30 µs | – |", table)


class CoresBusy(unittest.TestCase):
    def test_cores_busy_is_cpu_time_per_second(self):
        self.assertEqual(scaling.cores_busy(run(12, "after", 500_000, cpu_us=16.0)), "8.0")
        self.assertEqual(scaling.cores_busy({"rps": 1.0}), "–")


if __name__ == "__main__":
    unittest.main()
