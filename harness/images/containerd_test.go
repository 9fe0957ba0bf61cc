package images

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A testContainerd is a real containerd (Debian's) with its own root, state, socket and config
// under a test's temporary directory. Stopping it kills what it started and unmounts what it
// mounted, also when the test fails.
type testContainerd struct {
	tb      testing.TB
	dir     string
	address string
	ctr     string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	stopped sync.Once
}

// startContainerd starts a containerd and registers its stop with tb.Cleanup. The CRI plugin is
// left out: ctr talks to containerd's own API, and the images are what is under test.
func startContainerd(tb testing.TB) *testContainerd {
	tb.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		tb.Fatalf("this test runs a real containerd, and containerd is not on PATH: install the Debian packages containerd and runc (make deps): %v", err)
	}
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		tb.Fatalf("ctr (Debian package containerd) is not on PATH: %v", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		tb.Fatalf("runc (Debian package runc) is not on PATH: %v", err)
	}
	// A short directory: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "liftoff-ctrd-")
	if err != nil {
		tb.Fatal(err)
	}
	c := &testContainerd{tb: tb, dir: dir, address: filepath.Join(dir, "sock"), ctr: ctr, log: &bytes.Buffer{}}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.address, c.address+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		tb.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config", filepath.Join(dir, "config.toml"), "--log-level", "warn")
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("starting containerd: %v", err)
	}
	tb.Cleanup(c.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(ctr, "--address", c.address, "version").CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("Server:")) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("containerd did not answer within 30s: %v\n%s\ncontainerd's log:\n%s", err, out, c.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// run runs ctr against this containerd in the k8s.io namespace.
func (c *testContainerd) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.address, "--namespace", "k8s.io"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runImage runs argv in a new container of ref and returns its output. Each container has its own
// network namespace; privileged ones may change it.
//
// ctr run can lose the output of a process that exits at once (its copy from the task's FIFO
// races the exit): an empty output is asked for again, twice at most, so a program that really
// prints nothing still fails the caller's check.
func (c *testContainerd) runImage(ctx context.Context, ref string, privileged bool, argv ...string) (string, error) {
	for try := 1; ; try++ {
		id := fmt.Sprintf("liftoff-test-%d", time.Now().UnixNano())
		// No cgroup path: runc makes the container's cgroup below its own and removes it after.
		args := []string{"run", "--rm", "--runc-root", filepath.Join(c.dir, "runc"), "--cgroup", ""}
		if privileged {
			args = append(args, "--privileged")
		}
		args = append(args, ref, id)
		out, err := c.run(ctx, "", append(args, argv...)...)
		if err != nil || out != "" || try == 3 {
			return out, err
		}
	}
}

// stop removes every task and container, stops containerd, kills the shims it started and
// unmounts whatever is still mounted under its directory.
func (c *testContainerd) stop() { c.stopped.Do(c.stopOnce) }

func (c *testContainerd) stopOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := c.run(ctx, "", "tasks", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			c.run(ctx, "", "tasks", "kill", "-s", "SIGKILL", id)
			c.run(ctx, "", "tasks", "delete", "-f", id)
		}
	}
	if out, err := c.run(ctx, "", "containers", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			c.run(ctx, "", "containers", "delete", id)
		}
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	for _, pid := range processesNaming(c.address) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, m := range mountsUnder(c.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			c.tb.Errorf("unmounting %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.tb.Errorf("removing containerd's directory: %v", err)
	}
}

// processesNaming returns the processes whose command line holds s (containerd's shims are
// started with its address).
func processesNaming(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			mounts = append(mounts, fields[4])
		}
	}
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts
}
