// Command liftoff-testreport reads `go test -json` on standard input and prints what `go test`
// prints without -v (each package's result line, and the whole output of every test that failed),
// then ends with a digest of the failures: each failed test's last lines, without the local
// cluster's event log, so that the reason for a failure is at the end of a long run's output.
// It exits 1 when a test, a package or a build failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// digestLines is how many of a failed test's last lines the digest shows.
const digestLines = 25

// noise are lines that say what a local cluster did, not what a test found: the digest leaves them
// out (the full output above keeps them).
var noise = regexp.MustCompile(`^\s+(cluster|machine|kubelet|network)\.go:\d+: |^=== (RUN|PAUSE|CONT|NAME)`)

type test struct {
	lines  []string
	failed bool
}

// A test that neither passed nor failed when its package failed was still running: the package
// timed out or crashed in it.

func main() {
	failed, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "liftoff-testreport:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func report(in io.Reader, out io.Writer) (failed bool, err error) {
	tests := map[string]*test{} // by package and test name, until they pass
	var seen []string           // tests in the order they started
	var order []string          // failed tests, in the order they started
	var pkgLines = map[string][]string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// Not an event: the build's own output, passed through.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "output" && e.Test != "":
			t := tests[key]
			if t == nil {
				t = &test{}
				tests[key] = t
				seen = append(seen, key)
			}
			t.lines = append(t.lines, e.Output)
		case e.Action == "output":
			pkgLines[e.Package] = append(pkgLines[e.Package], e.Output)
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Action == "fail" && e.Test != "":
			failed = true
			if t := tests[key]; t != nil {
				t.failed = true
			} else {
				tests[key] = &test{failed: true}
				seen = append(seen, key)
			}
		case e.Action == "pass" && e.Test != "", e.Action == "skip" && e.Test != "":
			delete(tests, key)
		case e.Action == "fail" || e.Action == "pass" || e.Action == "skip":
			if e.Action == "fail" {
				failed = true
			}
			// The package is done: its failed tests' output in full, then its own lines.
			for _, k := range seen {
				t := tests[k]
				if t == nil || !strings.HasPrefix(k, e.Package+" ") {
					continue
				}
				if !t.failed && e.Action != "fail" {
					continue
				}
				if !t.failed {
					t.lines = append(t.lines, "    [still running when its package failed]\n")
				}
				order = append(order, k)
				for _, l := range t.lines {
					if !strings.HasPrefix(l, "=== ") {
						fmt.Fprint(out, l)
					}
				}
			}
			for _, l := range pkgLines[e.Package] {
				if e.Action == "fail" || !strings.HasPrefix(l, "PASS") {
					fmt.Fprint(out, l)
				}
			}
			delete(pkgLines, e.Package)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	if len(order) > 0 {
		fmt.Fprintf(out, "\n=== %d failed tests; the last lines of each (the full output is above) ===\n", len(order))
		for _, k := range order {
			t := tests[k]
			if t == nil || hasFailedChild(k, order) {
				continue
			}
			fmt.Fprintf(out, "--- %s\n", k)
			var kept []string
			for _, l := range t.lines {
				if !noise.MatchString(l) && !strings.HasPrefix(l, "--- ") {
					kept = append(kept, l)
				}
			}
			if len(kept) > digestLines {
				fmt.Fprintf(out, "    [%d lines before]\n", len(kept)-digestLines)
				kept = kept[len(kept)-digestLines:]
			}
			for _, l := range kept {
				fmt.Fprint(out, l)
			}
		}
	}
	return failed, nil
}

// hasFailedChild reports whether a subtest of the test k failed too: the digest shows the
// innermost failures only.
func hasFailedChild(k string, order []string) bool {
	for _, o := range order {
		if strings.HasPrefix(o, k+"/") {
			return true
		}
	}
	return false
}
