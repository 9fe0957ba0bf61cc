package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// snapshotSpec is a cluster with an etcd_snapshots block holding body; the block's settings are
// on line 4 and on.
func snapshotSpec(body string) string {
	return fmt.Sprintf(`cluster "snap" {
  api_server = "https://10.0.0.10:6443"
  etcd_snapshots {
    %s
  }
  controller "c1" { ip = "10.0.0.11" }
}
`, body)
}

func TestEtcdSnapshotDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		enabled   bool
		interval  string
		keep      int
	}{
		{"no block", `cluster "snap" {
  api_server = "https://10.0.0.10:6443"
  controller "c1" { ip = "10.0.0.11" }
}`, true, "1h", 24},
		{"empty block", snapshotSpec(""), true, "1h", 24},
		{"turned off", snapshotSpec("enabled = false"), false, "1h", 24},
		{"every 15 minutes, a day's worth", snapshotSpec("interval = \"15m\"\n    keep = 96"), true, "15m", 96},
		{"daily, in days", snapshotSpec("interval = \"1d\"\n    keep = 7"), true, "1d", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := spec.Parse([]byte(tc.src), "snap.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			full, err := spec.Complete(c)
			if err != nil {
				t.Fatal(err)
			}
			s := full.EtcdSnapshots
			if *s.Enabled != tc.enabled || s.Interval != tc.interval || *s.Keep != tc.keep {
				t.Errorf("enabled %v, interval %q, keep %d; want %v, %q, %d", *s.Enabled, s.Interval, *s.Keep, tc.enabled, tc.interval, tc.keep)
			}
		})
	}
}

// TestEtcdSnapshotSettingsRefused checks that a bad interval or count is reported at the line it
// was written on, naming the field, whether snapshots are on or off.
func TestEtcdSnapshotSettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string
	}{
		{"interval shorter than 5 minutes", `interval = "4m59s"`,
			`snap.hcl:4: etcd_snapshots.interval: Snapshot interval too short: 4m59s: snapshots must be at least 5m apart`},
		{"interval not a duration", `interval = "hourly"`,
			`snap.hcl:4: etcd_snapshots.interval: Invalid duration: "hourly" is not a positive duration`},
		{"interval without a unit", `interval = "3600"`,
			`snap.hcl:4: etcd_snapshots.interval: Invalid duration: "3600" is not a positive duration`},
		{"interval as a number", `interval = 3600`,
			`snap.hcl:4: etcd_snapshots.interval: Invalid duration: "3600" is not a positive duration`},
		{"negative interval", `interval = "-1h"`,
			`snap.hcl:4: etcd_snapshots.interval: Invalid duration: "-1h" is not a positive duration`},
		{"interval of no days", `interval = "0d"`,
			`snap.hcl:4: etcd_snapshots.interval: Invalid duration: "0d" is not a positive duration`},
		{"keep none", `keep = 0`,
			`snap.hcl:4: etcd_snapshots.keep: Invalid snapshot count: keep = 0: keep at least 1 snapshot, or set enabled = false to take none`},
		{"keep a negative count", `keep = -3`,
			`snap.hcl:4: etcd_snapshots.keep: Invalid snapshot count: keep = -3`},
		{"bad settings while off", "enabled  = false\n    interval = \"1m\"",
			`snap.hcl:5: etcd_snapshots.interval: Snapshot interval too short: 1m: snapshots must be at least 5m apart`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := spec.Parse([]byte(snapshotSpec(tc.body)), "snap.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			_, err := spec.Complete(c)
			if err == nil {
				t.Fatalf("accepted:\n%s", snapshotSpec(tc.body))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n  %s\nwant it to hold\n  %s", err, tc.want)
			}
			if inv, ok := spec.AsInvalid(err); !ok || len(inv.Problems) != 1 {
				t.Errorf("want exactly one problem: %v", err)
			}
		})
	}
}

// TestEtcdSnapshotTypeErrors checks that a setting of the wrong type is refused when the spec is
// read, with its file and line.
func TestEtcdSnapshotTypeErrors(t *testing.T) {
	for _, body := range []string{`keep = "many"`, `enabled = "sometimes"`, `retention = 3`} {
		_, diags := spec.Parse([]byte(snapshotSpec(body)), "snap.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "snap.hcl:4") {
			t.Errorf("%s: %v", body, diags)
		}
	}
}
