// Package ignitiontest runs the real Ignition binary for tests: it lays out a machine's root file
// system from a config as a machine's initramfs would.
package ignitiontest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// Sysroot makes a root directory that every user can traverse, as / is (Ignition writes a user's
// SSH keys as that user; t.TempDir's parents are private to root), holding what the OS image has
// before Ignition runs: the account databases with Flatcar's and Fedora CoreOS's core user, and the
// programs the rendered units start that the OS ships or that arrive at first boot (the kubelet
// and etcd fetched by liftoff-fetch).
func Sysroot(t testing.TB) string {
	t.Helper()
	root, err := os.MkdirTemp("", "liftoff-sysroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:Core:/home/core:/bin/bash\n",
		"etc/group":   "root:x:0:\ncore:x:500:\nsudo:x:27:core\ndocker:x:233:core\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\ncore:!::\nsudo:!::core\ndocker:!::core\n",
	}
	for p, content := range files {
		write(t, filepath.Join(root, p), content, 0o644)
	}
	if err := os.MkdirAll(filepath.Join(root, "home/core"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "home/core"), 500, 500); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/mkdir", "opt/bin/kubelet", "opt/bin/etcd", "usr/bin/docker", "usr/bin/podman", "usr/bin/systemd-sysext"} {
		write(t, filepath.Join(root, p), "#!/bin/sh\n", 0o755)
	}
	return root
}

func write(t testing.TB, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// Apply runs the real Ignition binary on config into root: the fetch stage, which fetches what
// the config references (configs it merges, remote files) as a machine with network does, then
// the files stage. It returns Ignition's error and log.
func Apply(t testing.TB, root string, config []byte) (string, error) {
	t.Helper()
	ignition := testbin.MustPath(t, "ignition")
	work := t.TempDir()
	cfg := filepath.Join(work, "config.ign")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	var log []byte
	for _, stage := range []string{"fetch", "files"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, ignition, "-platform", "file", "-stage", stage, "-root", root,
			"-config-cache", filepath.Join(work, "cache.json"), "-state-file", filepath.Join(work, "state.json"),
			"-neednet", filepath.Join(work, "neednet"), "-log-to-stdout")
		cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+cfg)
		out, err := cmd.CombinedOutput()
		cancel()
		log = append(log, out...)
		if err != nil {
			return string(log), err
		}
	}
	return string(log), nil
}

// MustApply is Apply that fails the test when Ignition fails.
func MustApply(t testing.TB, root string, config []byte) {
	t.Helper()
	if log, err := Apply(t, root, config); err != nil {
		t.Fatalf("ignition: %v\n%s", err, log)
	}
}

// Diff lists what differs between two root file systems Ignition laid out (Tree's lines, + for
// got's, - for want's), or returns "" when they are the same.
func Diff(t testing.TB, got, want string) string {
	t.Helper()
	in := func(root string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(Tree(t, root), "\n") {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var out []string
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Tree lists a root file system: each entry's path, type, mode, owner, and content's digest or
// link's target, one per line in path order. Ignition's record of its own run is left out.
func Tree(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "etc/.ignition-result.json" { // when Ignition ran
			return nil
		}
		st := info.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
