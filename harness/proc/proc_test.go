package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHostnameAndGroupKill(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "out.log")
	p, err := Start(Spec{Name: "test/hostname", Path: "/bin/sh", Args: []string{"-c", "hostname; echo $" + MarkerEnv + "; sleep 300 & sleep 300"},
		Env: []string{"PATH=/usr/bin:/bin"}, Log: log, Marker: "proc-test", Hostname: "machine-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(log)
		if out = string(data); strings.Count(out, "\n") >= 2 {
			break
		}
	}
	if want := "machine-1\nproc-test\n"; out != want {
		t.Errorf("the process saw %q, want %q (its own host name and the marker)", out, want)
	}
	if host, _ := os.Hostname(); host == "machine-1" {
		t.Errorf("the harness's own host name changed")
	}
	for deadline := time.Now().Add(10 * time.Second); len(Marked("proc-test")) < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(Marked("proc-test")); n != 3 {
		t.Errorf("%d marked processes, want 3 (the shell and its two sleeps)", n)
	}
	p.Kill()
	if got := p.ExitReason(); got != "killed by signal 9 (killed)" {
		t.Errorf("exit reason %q", got)
	}
	// The whole group dies, not only its leader.
	for deadline := time.Now().Add(10 * time.Second); len(Marked("proc-test")) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if left := Marked("proc-test"); len(left) > 0 {
		t.Errorf("processes left after Kill: %v", left)
	}
}

func TestStop(t *testing.T) {
	p, err := Start(Spec{Name: "test/stop", Path: "/bin/sh", Args: []string{"-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"},
		Env: []string{"PATH=/usr/bin:/bin"}, Marker: "proc-test-stop"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	p.Stop(10 * time.Second)
	if code := p.ExitCode(); code != 3 {
		t.Errorf("exit code %d after SIGTERM, want 3 (the trap ran)", code)
	}
}
