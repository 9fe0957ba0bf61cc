package harness_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
)

// checkSecurity checks, on a running cluster, what liftoff's control plane promises about secrets
// and access: Secrets are encrypted in etcd, every change is audited without secrets' bodies, Pod
// Security refuses privileged pods outside kube-system, the admin credential's rights come from
// RBAC, and the controller-manager and scheduler cannot be reached from the network.
func checkSecurity(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	const marker = "liftoff-plaintext-marker-4f1c"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "liftoff-encryption-check"}, StringData: map[string]string{"password": marker}}
	if _, err := client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("secrets-encrypted-in-etcd", func(t *testing.T) {
		cli, err := c.EtcdClient()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		// The Secret just written, and the bootstrap token that `liftoff bootstrap` applied.
		tokens, err := client.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=bootstrap.kubernetes.io/token"})
		if err != nil || len(tokens.Items) == 0 {
			t.Fatalf("no bootstrap token Secret (%v)", err)
		}
		for _, key := range []string{"/registry/secrets/default/" + secret.Name, "/registry/secrets/kube-system/" + tokens.Items[0].Name} {
			got, err := cli.Get(ctx, key)
			if err != nil || len(got.Kvs) != 1 {
				t.Fatalf("reading %s from etcd: %v %v", key, got, err)
			}
			v := got.Kvs[0].Value
			if !bytes.HasPrefix(v, []byte(generator.EncryptedSecretPrefix)) {
				t.Errorf("%s is stored as %q..., not sealed with the cluster's key (%s)", key, v[:min(len(v), 40)], generator.EncryptedSecretPrefix)
			}
			if bytes.Contains(v, []byte(marker)) || bytes.Contains(v, []byte(tokens.Items[0].Data["token-secret"])) {
				t.Errorf("%s holds the secret's value in the clear", key)
			}
		}
	})

	t.Run("audit-log", func(t *testing.T) {
		// Some apiserver saw the create; its event names the Secret but not its value.
		var found bool
		for _, m := range c.Controllers() {
			data, err := m.ReadFile(generator.HostAuditLogDir + "/audit.log")
			if err != nil {
				t.Errorf("%s: %v", m.Name, err)
				continue
			}
			if bytes.Contains(data, []byte(marker)) {
				t.Errorf("%s's audit log holds a Secret's value", m.Name)
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var e struct {
					Level     string `json:"level"`
					Verb      string `json:"verb"`
					ObjectRef struct {
						Resource, Namespace, Name string
					} `json:"objectRef"`
					User struct {
						Username string `json:"username"`
					} `json:"user"`
				}
				if json.Unmarshal(sc.Bytes(), &e) == nil && e.Verb == "create" && e.ObjectRef.Resource == "secrets" && e.ObjectRef.Name == secret.Name {
					found = true
					if e.Level != "Metadata" || e.User.Username != generator.UserAdmin {
						t.Errorf("%s audited the Secret's creation at level %s by %q", m.Name, e.Level, e.User.Username)
					}
				}
			}
		}
		if !found {
			t.Error("no controller's audit log records the Secret's creation")
		}
	})

	t.Run("pod-security", func(t *testing.T) {
		privileged := true
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "liftoff-privileged-check"},
			Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
				Name: "c", Image: testImage, SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
			}}},
		}
		_, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
			t.Errorf("a privileged host-network pod in default was not refused by Pod Security: %v", err)
		}
		// kube-system runs the cluster's own host-level pods.
		pod.Namespace = "kube-system"
		if _, err := client.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("kube-system is not exempt from Pod Security: %v", err)
		}
	})

	t.Run("admin-through-rbac", func(t *testing.T) {
		review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		groups := review.Status.UserInfo.Groups
		if review.Status.UserInfo.Username != generator.UserAdmin || !slices.Contains(groups, generator.UserAdminGroup) || slices.Contains(groups, "system:masters") {
			t.Errorf("the admin credential is %q in %v, want %s in %s only", review.Status.UserInfo.Username, groups, generator.UserAdmin, generator.UserAdminGroup)
		}
		// The break-glass credential stays in the output directory: no machine has it.
		for _, m := range c.Machines() {
			for _, p := range []string{generator.HostKubernetesDir + "/super-admin.conf", generator.HostPKIDir + "/super-admin.key"} {
				if _, err := m.ReadFile(p); err == nil {
					t.Errorf("%s has %s", m.Name, p)
				}
			}
		}
	})

	t.Run("components-on-loopback", func(t *testing.T) {
		for _, m := range c.Controllers() {
			for _, port := range []int{generator.ControllerManagerPort, generator.SchedulerPort} {
				conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.IP, strconv.Itoa(port)), 2*time.Second)
				if err == nil {
					conn.Close()
					t.Errorf("port %d of %s answers on the machine's address", port, m.Name)
				}
			}
		}
	})

	// etcd runs as its own user, which owns its data directory; its member's keys are its own and
	// the cluster's PKI directory stays root's.
	t.Run("etcd-as-its-own-user", func(t *testing.T) {
		for _, m := range c.Controllers() {
			out, err := m.Exec(ctx, "/bin/sh", "-c", fmt.Sprintf(`pid=$(ss -Hltnp 'sport = :%d' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
stat -c '%%U:%%G' /proc/$pid %s %s`, generator.EtcdClientPort, generator.HostEtcdDataDir, generator.HostEtcdMemberPKIDir+"/peer.key"))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Repeat(generator.EtcdUser+":"+generator.EtcdUser+"\n", 3)
			if out != want {
				t.Errorf("%s: etcd's process, data directory and peer key are owned by\n%swant %s", m.Name, out, generator.EtcdUser)
			}
		}
	})

	// A machine whose kubelet has joined keeps no bootstrap token.
	t.Run("bootstrap-token-removed", func(t *testing.T) {
		untilTrue(t, ctx, time.Minute, "every machine's bootstrap kubeconfig removed", func() (bool, string) {
			var left []string
			for _, m := range c.Machines() {
				if _, err := m.ReadFile(generator.HostBootstrapKubeletConf); err == nil {
					left = append(left, m.Name)
				}
			}
			return len(left) == 0, fmt.Sprintf("%s still on %v", generator.HostBootstrapKubeletConf, left)
		})
	})
}
