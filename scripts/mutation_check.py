"""A small hand-written mutation check: apply one mutant at a time, run the tests that should
catch it, record which tests failed, restore the file. Never leaves a mutant behind.

    .venv/bin/python scripts/mutation_check.py [module[:ID] ...]   # region modularity metrics ingest; ingest:I3

Integration mutants (ingest) need NEO4J_URI / NEO4J_PASSWORD or a local server (see tests/integration).
"""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNIT = ["tests/unit/test_region.py", "tests/unit/test_engine.py", "tests/unit/test_modularity.py"]
SUITES = {
    "region": ("cxrneo/retrieval/region.py", UNIT),
    "modularity": ("cxrneo/retrieval/modularity.py", UNIT),
    "metrics": ("cxrneo/evaluation/metrics.py", ["tests/unit/test_metrics.py", "tests/unit/test_evaluate.py"]),
    "ingest": ("cxrneo/db/ingest.py", ["tests/integration/test_ingest.py", "tests/integration/test_cli_errors_neo4j.py"]),
}
# (name, kind, original text, mutated text): each original must occur exactly once
MUTANTS = {
    "region": [
        ("R1", "off-by-one: step 2b stops one row short of k",
         "while len(out.rows) < k and self.left:", "while len(out.rows) < k - 1 and self.left:"),
        ("R2", "early stop: growth ends after the first community",
         "while len(out.rows) < k and e_rc:", "while len(out.rows) < k and e_rc and not used:"),
        ("R3", "wrong tie-break: tied nodes by lower cosine",
         "best = self.cos.top(1, self.g.ids.__getitem__, among=rows[ties])",
         "best = self.cos.top(ties.size, self.g.ids.__getitem__, among=rows[ties])[::-1]"),
        ("R4", "wrong tie-break: tied communities by larger id",
         "c = min(c for c, v in gains.items() if v >= best", "c = max(c for c, v in gains.items() if v >= best"),
        ("R5", "wrong sign: strict mode goes on at a zero gain",
         "if strict and best <= 0:", "if strict and best < 0:"),
        ("R6", "dropped term: R's degree forgets the query edge of a joining neighbour",
         "r.d += int(blk.degree[j]) + int(self.is_nbr[row])", "r.d += int(blk.degree[j])"),
        ("R7", "dropped term: excluded members' edges stay in e(R, c)",
         "                e_rc[c2] -= 1", "                pass"),
        ("R8", "dropped check: step b never weighs members without an edge to R while R has a frontier",
         "if best - tie_tolerance(best, self.total_s) <= lone + LONE_MARGIN:", "if not gains.size:"),
    ],
    "modularity": [
        ("M1", "dropped factor: density l/(n(n-1)) instead of 2l/(n(n-1))",
         "return 1.0 + 2.0 * l / (n * (n - 1)) if n > 1", "return 1.0 + l / (n * (n - 1)) if n > 1"),
        ("M2", "wrong sign in q_u = l/L - (d/2L)^2",
         "(l / total - (d / (2.0 * total)) ** 2)", "(l / total + (d / (2.0 * total)) ** 2)"),
        ("M3", "dropped term: merge gain forgets c's own term",
         " - community_term(n_c, l_c, d_c, total)", ""),
        ("M4", "off-by-one: λ after the join uses n_r(n_r - 1)",
         "(n_r * (n_r + 1))", "(n_r * n_r)"),
        ("M5", "dropped term: the join gain forgets the singleton's term",
         "return lam_after * q_after - community_term(n_r, l_r, d_r, total) - q_single",
         "return lam_after * q_after - community_term(n_r, l_r, d_r, total)"),
    ],
    "metrics": [
        ("X1", "off-by-one: discount 1/log2(n+2)", "np.log2(np.arange(2, k + 2))", "np.log2(np.arange(3, k + 3))"),
        ("X2", "off-by-one: precision counts r > 1", "return (r > 0).mean(axis=1)", "return (r > 1).mean(axis=1)"),
        ("X3", "dropped term: DCG gain 2^r instead of 2^r - 1",
         "return ((np.exp2(r) - 1.0) * _discount(r.shape[1])).sum(axis=1)",
         "return (np.exp2(r) * _discount(r.shape[1])).sum(axis=1)"),
        ("X4", "dropped condition: group -1 (no patient) excluded from the ideal",
         "r[(qg == np.asarray(db_groups)[None, :]) & (qg >= 0)] = 0", "r[qg == np.asarray(db_groups)[None, :]] = 0"),
        ("X5", "dropped statement: missing results (-1) score as the last row", "    rel[results < 0] = 0\n", ""),
        ("X6", "wrong comparison: ties count as A better", "float((means > 0).mean())", "float((means >= 0).mean())"),
        ("X7", "wrong level: bootstrap interval at 90 % instead of 95 %",
         "    a = (1.0 - level) / 2.0\n", "    a = 1.0 - level\n"),
    ],
    "ingest": [
        ("I1", "wrong mode: partly stored sources get CREATE (duplicates) instead of MERGE",
         "np.where(stored[a] == expected[a], 0, 2)", "np.where(stored[a] == expected[a], 0, 1)"),
        ("I2", "no skip: complete sources are merged again",
         "np.where(stored[a] == expected[a], 0, 2)", "np.where(stored[a] == expected[a], 2, 2)"),
        ("I3", "off-by-one: one extra stored edge tolerated",
         "if (stored > expected).any():", "if (stored > expected + 1).any():"),
        ("I4", "dropped check: edge count not verified after ingest",
         'if counts["nodes"] != len(ids) or counts["edges"] != len(edges):', 'if counts["nodes"] != len(ids):'),
        ("I5", "early stop: only the first edge batch of each mode is written",
         "                done[m] += len(pos)\n", "                done[m] += len(pos)\n                break\n"),
        ("I6", "dropped statement: stored out-edges not read (every source looks fresh)",
         '            stored[row_of[r["id"]]] = r["out"]', "            pass"),
    ],
}


def run(tests: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rf",
           "-o", "addopts=", "--hypothesis-seed=0", *tests]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800).stdout
    return sorted({m.group(1).split("[")[0] for m in re.finditer(r"^FAILED (\S+)", out, re.M)})


def main(names: list[str]) -> None:
    for arg in names or list(SUITES):
        name, _, only = arg.partition(":")
        rel, tests = SUITES[name]
        path = REPO / rel
        original = path.read_text()
        for mid, kind, old, new in MUTANTS[name]:
            if only and mid != only:
                continue
            assert original.count(old) == 1, (mid, old)
            try:
                path.write_text(original.replace(old, new))
                failed = run(tests)
            finally:
                path.write_text(original)
            verdict = "killed by " + ", ".join(f.replace("tests/", "") for f in failed) if failed else "SURVIVED"
            print(f"{mid} | {kind} | {verdict}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
