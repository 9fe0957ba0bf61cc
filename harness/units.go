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
	// Type is simple (the default), notify or oneshot.
	Type string
	// ExecStartPre and ExecStart are command lines, continuation lines joined and ${VAR} expanded
	// from the unit's EnvironmentFile and Environment.
	ExecStartPre [][]string
	ExecStart    []string
	// Privileged marks the ExecStartPre lines prefixed "+", which run as root whatever User says.
	Privileged []bool
	// User and Group are the account the unit's processes run as (User=, Group=); empty is root.
	User, Group string
	Restart     string
	RestartSec  time.Duration
	// Requires, Wants and After name other units, as in [Unit].
	Requires, Wants, After []string
	// Conditions are ConditionPathExists= values: a path, or !path for "must not exist".
	Conditions []string
	// Env is the environment the unit's processes get from Environment= and EnvironmentFile=.
	Env []string
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
	data, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", name))
	if err != nil {
		return nil, err
	}
	return parseUnit(root, name, string(data))
}

// parseUnit parses a unit's text; root is the machine's root, where EnvironmentFile= is read.
func parseUnit(root, name, text string) (*unit, error) {
	u := &unit{Name: name, Type: "simple", RestartSec: 100 * time.Millisecond}
	env := map[string]string{}
	var pre []string
	var exec string
	joined := strings.ReplaceAll(text, "\\\n", " ")
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
		key, value, _ := strings.Cut(l, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if section == "[Unit]" {
			switch key {
			case "Requires":
				u.Requires = append(u.Requires, strings.Fields(value)...)
			case "Wants":
				u.Wants = append(u.Wants, strings.Fields(value)...)
			case "After":
				u.After = append(u.After, strings.Fields(value)...)
			case "ConditionPathExists":
				u.Conditions = append(u.Conditions, value)
			}
			continue
		}
		if section != "[Service]" {
			continue
		}
		switch key {
		case "Type":
			u.Type = value
		case "User":
			u.User = value
		case "Group":
			u.Group = value
		case "ExecStart":
			exec = value
		case "ExecStartPre":
			pre = append(pre, value)
		case "EnvironmentFile":
			f := strings.TrimPrefix(value, "-")
			vars, err := readEnvironmentFile(filepath.Join(root, f))
			if err != nil && !strings.HasPrefix(value, "-") {
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
			u.Restart = value
		case "RestartSec":
			if n, err := strconv.ParseFloat(value, 64); err == nil {
				u.RestartSec = time.Duration(n * float64(time.Second))
			} else if d, err := time.ParseDuration(value); err == nil {
				u.RestartSec = d
			}
		}
	}
	if exec == "" {
		return nil, fmt.Errorf("%s has no ExecStart", name)
	}
	expand := func(line string) []string {
		var out []string
		for _, f := range strings.Fields(strings.TrimLeft(line, "-@:+!")) {
			out = append(out, os.Expand(f, func(k string) string { return env[k] }))
		}
		return out
	}
	u.ExecStart = expand(exec)
	for _, p := range pre {
		u.ExecStartPre = append(u.ExecStartPre, expand(p))
		u.Privileged = append(u.Privileged, strings.HasPrefix(strings.TrimLeft(p, "-@:!"), "+"))
	}
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		u.Env = append(u.Env, k+"="+env[k])
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
