package generator_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
)

// etcd runs as its own user however it is delivered: systemd starts a downloaded etcd as that user,
// a container engine (whose client must run as root) starts it as that uid and gid. Either way the
// join runs first as root and hands the user its data.
func TestEtcdRunsAsItsUser(t *testing.T) {
	demo, err := os.ReadFile("../examples/demo/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	image := "quay.io/coreos/etcd:v3.6.5@sha256:" + strings.Repeat("ab", 32)
	container := strings.Replace(strings.Replace(string(demo), `"flatcar"`, `"fcos"`, 1),
		"\n  controller ", fmt.Sprintf("\n  etcd {\n    delivery = \"container\"\n    image = %q\n  }\n  controller ", image), 1)
	join := "ExecStartPre=+/opt/liftoff/bin/liftoff-etcd-join /etc/etcd/etcd.yaml /etc/etcd/etcd.start.yaml etcd:etcd\n"
	for _, tc := range []struct {
		name, src, user, exec string
	}{
		{"download", string(demo), "User=etcd\nGroup=etcd\n", "ExecStart=/opt/bin/etcd --config-file=/etc/etcd/etcd.start.yaml\n"},
		{"container", container, "", "--user 232:232 " + image + " etcd --config-file=/etc/etcd/etcd.start.yaml\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res := renderSource(t, tc.src)
			cfg, _, err := ign.Parse(res.Assets.Get("ignition/node1.ign").Data)
			if err != nil {
				t.Fatal(err)
			}
			var unit string
			for _, u := range cfg.Systemd.Units {
				if u.Name == "etcd.service" && u.Contents != nil {
					unit = *u.Contents
				}
			}
			if !strings.Contains(unit, join) || !strings.Contains(unit, tc.exec) || strings.Contains(unit, "User=") != (tc.user != "") ||
				(tc.user != "" && !strings.Contains(unit, tc.user)) {
				t.Errorf("etcd.service runs etcd as\n%s\nwant %q, %q and %q", unit, tc.user, join, tc.exec)
			}
		})
	}
}
