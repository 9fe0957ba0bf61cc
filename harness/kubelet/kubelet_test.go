package kubelet

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseFlags(t *testing.T) {
	f, err := ParseFlags([]string{"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/var/lib/kubelet/kubeconfig",
		"--config=/var/lib/kubelet/config.yaml", "--node-ip=127.42.0.11", "--hostname-override=c1",
		"--node-labels=node.kubernetes.io/controller=true,x=y", "--register-with-taints=node-role.kubernetes.io/controller:NoSchedule,k=v:NoExecute"})
	if err != nil {
		t.Fatal(err)
	}
	if f.NodeLabels["node.kubernetes.io/controller"] != "true" || f.NodeLabels["x"] != "y" || len(f.NodeLabels) != 2 {
		t.Errorf("labels %v", f.NodeLabels)
	}
	want := []corev1.Taint{{Key: "node-role.kubernetes.io/controller", Effect: corev1.TaintEffectNoSchedule}, {Key: "k", Value: "v", Effect: corev1.TaintEffectNoExecute}}
	if !slices.Equal(f.RegisterWithTaints, want) {
		t.Errorf("taints %v, want %v", f.RegisterWithTaints, want)
	}
	if f.CertDir != "/var/lib/kubelet/pki" {
		t.Errorf("cert dir %q", f.CertDir)
	}
	for _, bad := range [][]string{
		{"--kubeconfig=k", "--config=c", "--node-ip=1.2.3.4", "--hostname-override=n", "--container-runtime-endpoint=x"},
		{"--kubeconfig=k", "--config=c", "--node-ip=1.2.3.4"},
		{"--kubeconfig=k", "--config=c", "--node-ip=1.2.3.4", "--hostname-override=n", "--register-with-taints=a=b"},
		{"-v", "2"},
	} {
		if _, err := ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%q) accepted", bad)
		}
	}
}

func TestRewritePaths(t *testing.T) {
	mounts := []mount{
		{container: "/etc/kubernetes/pki/etcd", host: "/m/root/etc/kubernetes/pki/etcd"},
		{container: "/etc/kubernetes/pki", host: "/m/root/etc/kubernetes/pki"},
		{container: "/etc/kubernetes/authentication.yaml", host: "/m/root/etc/kubernetes/authentication.yaml"},
	}
	for in, want := range map[string]string{
		"--client-ca-file=/etc/kubernetes/pki/ca.crt":                                "--client-ca-file=/m/root/etc/kubernetes/pki/ca.crt",
		"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt":                              "--etcd-cafile=/m/root/etc/kubernetes/pki/etcd/ca.crt",
		"--authentication-config=/etc/kubernetes/authentication.yaml":                "--authentication-config=/m/root/etc/kubernetes/authentication.yaml",
		"--etcd-servers=https://127.0.0.1:2379,https://127.0.0.2:2379":               "--etcd-servers=https://127.0.0.1:2379,https://127.0.0.2:2379",
		"--files=/etc/kubernetes/pki/a,/etc/kubernetes/pki/b":                        "--files=/m/root/etc/kubernetes/pki/a,/m/root/etc/kubernetes/pki/b",
		"--not-mounted=/etc/kubernetes/other.conf":                                   "--not-mounted=/etc/kubernetes/other.conf",
		"--prefix-only=/etc/kubernetes/pkiX/a":                                       "--prefix-only=/etc/kubernetes/pkiX/a",
		"/etc/kubernetes/pki":                                                        "/m/root/etc/kubernetes/pki",
		"--service-account-issuer=https://kubernetes.default.svc/etc/kubernetes/pki": "--service-account-issuer=https://kubernetes.default.svc/etc/kubernetes/pki",
	} {
		if got := rewritePaths(in, mounts); got != want {
			t.Errorf("rewritePaths(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"NODE_NAME": "w1", "HOST_IP": "127.42.0.21"}
	for in, want := range map[string]string{
		"--hostname-override=$(NODE_NAME)": "--hostname-override=w1",
		"--iface=$(HOST_IP)":               "--iface=127.42.0.21",
		"$(UNKNOWN)":                       "$(UNKNOWN)",
		"$$(NODE_NAME)":                    "$(NODE_NAME)",
		"cost $5":                          "cost $5",
		"$(unterminated":                   "$(unterminated",
	} {
		if got := expandVars(in, env); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}
