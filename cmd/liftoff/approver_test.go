package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestKubeletServingApproverSaysHowToReachTheAPI(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	missing := filepath.Join(t.TempDir(), "missing.conf")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "not running in a pod with a service account"},
		{[]string{"--kubeconfig", missing}, "reading kubeconfig " + missing},
	} {
		_, stderr, code := runCLI(t, append([]string{"kubelet-serving-approver"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 saying %q", tc.args, code, stderr, tc.want)
		}
	}
}
