package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// unit is the part of a systemd service unit the harness acts on.
type unit struct {
	Name string
	// ExecStart is the command line, continuation lines joined and ${VAR} expanded from the unit's
	// EnvironmentFile.
	ExecStart  []string
	Restart    string
	RestartSec time.Duration
}

// enabledUnits lists the units enabled in a machine's root: by preset files (how Ignition enables
// units) or by .wants links.
func enabledUnits(root string) ([]string, error) {
	enabled := map[string]bool{}
	presets, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system-preset/*.preset"))
	for _, p := range presets {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "enable" {
				enabled[f[1]] = true
			}
		}
	}
	wants, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*.wants/*"))
	for _, w := range wants {
		enabled[filepath.Base(w)] = true
	}
	var out []string
	for u := range enabled {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

// readUnit parses a unit file from the machine's /etc/systemd/system.
func readUnit(root, name string) (*unit, error) {
	path := filepath.Join(root, "etc/systemd/system", name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u := &unit{Name: name, RestartSec: 100 * time.Millisecond}
	env := map[string]string{}
	var exec string
	joined := strings.ReplaceAll(string(data), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(joined))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	section := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		if strings.HasPrefix(l, "[") {
			section = l
			continue
		}
		if section != "[Service]" {
			continue
		}
		key, value, _ := strings.Cut(l, "=")
		switch strings.TrimSpace(key) {
		case "ExecStart":
			exec = strings.TrimSpace(value)
		case "EnvironmentFile":
			f := strings.TrimPrefix(strings.TrimSpace(value), "-")
			vars, err := readEnvironmentFile(filepath.Join(root, f))
			if err != nil && !strings.HasPrefix(strings.TrimSpace(value), "-") {
				return nil, fmt.Errorf("%s: EnvironmentFile %s: %w", name, f, err)
			}
			for k, v := range vars {
				env[k] = v
			}
		case "Environment":
			for _, kv := range strings.Fields(value) {
				k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
				env[k] = v
			}
		case "Restart":
			u.Restart = strings.TrimSpace(value)
		case "RestartSec":
			s := strings.TrimSpace(value)
			if n, err := strconv.ParseFloat(s, 64); err == nil {
				u.RestartSec = time.Duration(n * float64(time.Second))
			} else if d, err := time.ParseDuration(s); err == nil {
				u.RestartSec = d
			}
		}
	}
	if exec == "" {
		return nil, fmt.Errorf("%s has no ExecStart", name)
	}
	for _, f := range strings.Fields(strings.TrimLeft(exec, "-@:+!")) {
		u.ExecStart = append(u.ExecStart, os.Expand(f, func(k string) string { return env[k] }))
	}
	return u, nil
}

func readEnvironmentFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out, nil
}
