"""Runs unittest modules and prints TAP (one line per test case) for meson and scripts/test."""
import sys
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, note=""):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {test.id()}{note}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        print("# " + self._exc_info_to_string(err, test).replace("\n", "\n# "), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        print("# " + self._exc_info_to_string(err, test).replace("\n", "\n# "), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, f" # SKIP {reason}")


def main(paths):
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    for p in paths:
        suite.addTests(loader.discover(start_dir=p.rsplit("/", 1)[0], pattern=p.rsplit("/", 1)[1]))
    count = suite.countTestCases()
    print(f"1..{count}", flush=True)
    r = TapResult()
    suite.run(r)
    if r.n < count:  # a module-level setUp failure: the cases never ran
        for _ in range(count - r.n):
            r.n += 1
            print(f"not ok {r.n} - did not run (module setup failed)")
    for test, err in r.errors:
        if not hasattr(test, "id") or r.n == 0:
            print("# " + err.replace("\n", "\n# "))
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
