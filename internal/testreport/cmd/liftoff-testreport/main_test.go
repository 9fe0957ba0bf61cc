package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The digest at the end names the failed test and its error, without the cluster's event lines,
// and a passing test's logs are not printed at all.
func TestDigestEndsWithTheFailure(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod": "module example\n\ngo 1.26\n",
		// Events logged from cluster.go, as the harness's are.
		"cluster.go": "package example\n\nimport \"testing\"\n\nfunc event(t testing.TB, msg string) { t.Log(msg) }\n",
		"a_test.go": `package example

import "testing"

func TestPasses(t *testing.T) { t.Log("a passing test's log") }

func TestFails(t *testing.T) {
	t.Run("inner", func(t *testing.T) {
		event(t, "controller-1: powered on")
		t.Error("the probe failed 3 of 40 requests")
		for range 40 {
			event(t, "a cluster event")
		}
	})
}
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-json", ".")
	cmd.Dir = dir
	raw, _ := cmd.Output()
	var out bytes.Buffer
	failed, err := report(bytes.NewReader(raw), &out)
	if err != nil || !failed {
		t.Fatalf("report: failed %v, %v", failed, err)
	}
	text := out.String()
	i := strings.Index(text, "failed tests; the last lines of each")
	if i < 0 {
		t.Fatalf("no digest:\n%s", text)
	}
	digest := text[i:]
	if !strings.Contains(digest, "--- example TestFails/inner") || !strings.Contains(digest, "the probe failed 3 of 40 requests") ||
		strings.Contains(digest, "a cluster event") || strings.Contains(digest, "--- example TestFails\n") {
		t.Errorf("digest:\n%s", digest)
	}
	if strings.Contains(text, "a passing test's log") || !strings.Contains(text, "FAIL\texample") {
		t.Errorf("output:\n%s", text)
	}
}
