package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// seedFiles are the account files a fresh root needs so that Ignition can add users and groups.
var seedFiles = map[string]string{
	"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\n",
	"etc/group":   "root:x:0:\nusers:x:100:\n",
	"etc/shadow":  "root:*:19000:0:99999:7:::\n",
	"etc/gshadow": "root:*::\nusers:*::\n",
}

// applyIgnition lays out root by running the real Ignition binary on the config file, offline:
// the fetch-offline stage then the files stage, as a machine's initramfs would (the disks and
// mount stages need udev and systemd and have nothing to do for these configs).
func applyIgnition(ctx context.Context, ignition, config, root, state string) error {
	for name, text := range seedFiles {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	var log bytes.Buffer
	for _, stage := range []string{"fetch-offline", "files"} {
		cmd := exec.CommandContext(ctx, ignition,
			"-platform", "file", "-stage", stage, "-root", root,
			"-config-cache", filepath.Join(state, "config.json"),
			"-state-file", filepath.Join(state, "state.json"),
			"-neednet", filepath.Join(state, "neednet"),
			"-log-to-stdout")
		cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+config)
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		if werr := os.WriteFile(filepath.Join(state, "ignition.log"), log.Bytes(), 0o644); werr != nil && err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("ignition -stage %s on %s: %w\n%s", stage, config, err, lastLines(log.String(), 20))
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
