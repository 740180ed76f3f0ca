"""Unit tests of the report's arithmetic (scripts/test runs them): the ratio of side-by-side
rounds, and when a target may be called met. Synthetic runs, no servers."""

import unittest

from . import report


def max_run(server: str, scenario: str, round_: int, rps: float) -> dict:
    return {"server": server, "scenario": scenario, "mode": "max", "round": round_,
            "steady_rps": rps, "achieved_rps": rps, "foreign_cpu_share": 0.0,
            "success": {"p50_us": 100, "p99_us": 300, "p999_us": 900}, "failure": {},
            "server_cpu_us_per_request": 10.0, "generator_cpu_util": 1.0}


def tokeninfo(keycard: list[float], bare: list[float]) -> dict:
    runs = [max_run("keycard", "tokeninfo", i, v) for i, v in enumerate(keycard, 1)]
    runs += [max_run("bare", "tokeninfo", i, v) for i, v in enumerate(bare, 1)]
    return report.summarize(runs)


class Ratio(unittest.TestCase):
    def test_the_ratio_is_the_median_of_the_rounds(self):
        summary = tokeninfo([70_000, 90_000, 80_000], [100_000, 100_000, 200_000])
        ratios = summary["tokeninfo"]["ratio_rounds"]["keycard/bare"]
        self.assertEqual([round(r, 2) for r in ratios], [0.7, 0.9, 0.4])
        self.assertAlmostEqual(summary["tokeninfo"]["ratios"]["keycard/bare"], 0.7)


class Targets(unittest.TestCase):
    def test_met_and_not_met_on_a_steady_ceiling(self):
        met = report.targets(tokeninfo([72_000] * 3, [100_000, 104_000, 98_000]))
        self.assertIs(met["keycard/bare >= 0.70"]["met"], True)
        missed = report.targets(tokeninfo([60_000] * 3, [100_000, 104_000, 98_000]))
        self.assertIs(missed["keycard/bare >= 0.70"]["met"], False)

    def test_a_ceiling_that_moved_leaves_the_ratio_undecided(self):
        # The seventeenth session's run: bare slow in two of three rounds.
        summary = tokeninfo([93_602, 97_919, 97_154], [111_784, 150_387, 114_697])
        target = report.targets(summary)["keycard/bare >= 0.70"]
        self.assertIsNone(target["met"])
        self.assertIn("26%", target["unsettled"])
        self.assertAlmostEqual(target["value"], 0.8374, places=3)

    def test_the_spread_just_within_the_limit_still_decides(self):
        summary = tokeninfo([80_000] * 3, [100_000, 86_000, 100_000])
        self.assertAlmostEqual(report.ceiling_spread(summary, "tokeninfo"), 0.14)
        self.assertIs(report.targets(summary)["keycard/bare >= 0.70"]["met"], True)

    def test_one_round_has_no_spread(self):
        summary = tokeninfo([80_000], [100_000])
        self.assertIsNone(report.ceiling_spread(summary, "tokeninfo"))


if __name__ == "__main__":
    unittest.main()
