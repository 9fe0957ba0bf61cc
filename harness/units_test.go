package harness

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestReadUnit(t *testing.T) {
	root := t.TempDir()
	write := func(p, text string) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/kubernetes/kubelet.env", "NODE_NAME=w1\nNODE_IP=127.42.0.21\nNODE_LABELS=a=b,c=d\nNODE_TAINTS=\n")
	write("etc/systemd/system/kubelet.service", `[Unit]
Description=kubelet
ExecStart=/wrong/section

[Service]
EnvironmentFile=/etc/kubernetes/kubelet.env
ExecStartPre=/bin/mkdir -p /etc/kubernetes/manifests
ExecStart=/opt/bin/kubelet \
  --node-ip=${NODE_IP} \
  --hostname-override=${NODE_NAME} \
  --node-labels=${NODE_LABELS} \
  --register-with-taints=${NODE_TAINTS}
Restart=always
RestartSec=5
`)
	write("etc/systemd/system-preset/20-ignition.preset", "enable kubelet.service\nenable etcd.service\ndisable other.service\n")
	write("etc/systemd/system/multi-user.target.wants/extra.service", "")
	u, err := readUnit(root, "kubelet.service")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/opt/bin/kubelet", "--node-ip=127.42.0.21", "--hostname-override=w1", "--node-labels=a=b,c=d", "--register-with-taints="}
	if !slices.Equal(u.ExecStart, want) {
		t.Errorf("ExecStart = %q, want %q", u.ExecStart, want)
	}
	if u.Restart != "always" || u.RestartSec != 5*time.Second {
		t.Errorf("Restart=%s RestartSec=%s", u.Restart, u.RestartSec)
	}
	units, err := enabledUnits(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"etcd.service", "extra.service", "kubelet.service"}; !slices.Equal(units, want) {
		t.Errorf("enabled units = %v, want %v", units, want)
	}
}

// A unit with User= runs its processes as that user, except the ExecStartPre lines marked "+".
func TestUnitUser(t *testing.T) {
	u, err := parseUnit(t.TempDir(), "etcd.service", `[Service]
User=etcd
Group=etcd
ExecStartPre=+/opt/liftoff/bin/liftoff-etcd-join /etc/etcd/etcd.yaml /etc/etcd/etcd.start.yaml etcd:etcd
ExecStartPre=/bin/true
ExecStart=/opt/bin/etcd --config-file=/etc/etcd/etcd.start.yaml
`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Privileged, []bool{true, false}) || u.ExecStartPre[0][0] != "/opt/liftoff/bin/liftoff-etcd-join" {
		t.Errorf("ExecStartPre %q privileged %v", u.ExecStartPre, u.Privileged)
	}
	want := []string{"/usr/bin/setpriv", "--reuid=etcd", "--regid=etcd", "--init-groups", "--", "/opt/bin/etcd", "--config-file=/etc/etcd/etcd.start.yaml"}
	if got := asUser(u, u.ExecStart); !slices.Equal(got, want) {
		t.Errorf("ExecStart runs as %q, want %q", got, want)
	}
	u.User = ""
	if got := asUser(u, u.ExecStart); !slices.Equal(got, u.ExecStart) {
		t.Errorf("without User=, ExecStart runs as %q", got)
	}
}
