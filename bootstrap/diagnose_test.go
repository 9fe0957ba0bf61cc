package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/spec"
)

func dialError(addr string, err error) error {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := net.LookupPort("tcp", port)
	return &url.Error{Op: "Get", URL: "https://" + addr + "/readyz?verbose=", Err: &net.OpError{
		Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP(host), Port: p}, Err: err}}
}

// stageFailed is the error runStage returns for a wait that ended with things missing.
func stageFailed(st Stage, missing ...string) error {
	cause := fmt.Errorf("stage %s did not finish within 5s", st)
	err := fmt.Errorf("%w: %w", cause, &missingError{what: "the static control plane on c1", missing: missing, cause: cause})
	return fmt.Errorf("bootstrap stage %s: %w (nothing was torn down; resume with --from %s)", st, err, st)
}

func controlPlanePod(name, node string, statuses ...corev1.ContainerStatus) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{"tier": "control-plane"}},
		Spec: corev1.PodSpec{NodeName: node}}
	for _, cs := range statuses {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: cs.Name, Image: "registry.example/" + cs.Name + ":v1"})
	}
	p.Status.ContainerStatuses = statuses
	return p
}

func waiting(name, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}
}

func crashing(name string, restarts int32, exit int32) corev1.ContainerStatus {
	cs := waiting(name, "CrashLoopBackOff", "back-off 5m0s restarting failed container")
	cs.RestartCount = restarts
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: exit, Reason: "Error"}
	return cs
}

func TestClassify(t *testing.T) {
	const api = "https://api.example.com:6443"
	notRegistered := "Node c1 has not registered (is its kubelet running and able to reach the API?)"
	serving := &x509.Certificate{DNSNames: []string{"api.example.com", "kubernetes"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")},
		Issuer: pkix.Name{CommonName: "other cluster CA"}}
	verifyFailed := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://10.0.0.99:6443/readyz", Err: &tls.CertificateVerificationError{Err: err}}
	}
	threeMembers := func(leaders ...uint64) etcdReport {
		var r etcdReport
		for i, node := range []string{"c1", "c2", "c3"} {
			m := etcdMemberStatus{node: node, endpoint: fmt.Sprintf("https://10.0.0.%d:2379", i+1), id: uint64(i + 1)}
			if i < len(leaders) {
				m.reachable, m.leader, m.raftTerm = true, leaders[i], 7
			} else {
				m.err = "context deadline exceeded"
			}
			r.members = append(r.members, m)
		}
		return r
	}
	scheduler := controlPlanePod("kube-scheduler-c1", "c1", crashing("kube-scheduler", 4, 1))
	schedulerLogs := []containerLog{
		{pod: "kube-scheduler-c1", container: "kube-scheduler", text: "I0101 starting\n"},
		{pod: "kube-scheduler-c1", container: "kube-scheduler", previous: true,
			text: "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nE0101 open /etc/kubernetes/scheduler.conf: no such file or directory\n\n"},
	}
	pullFailing := controlPlanePod("kube-apiserver-c1", "c1", waiting("kube-apiserver", "ImagePullBackOff", `Back-off pulling image "registry.example/kube-apiserver:v1"`))
	coredns := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "coredns-7d4f", Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.PodSpec{NodeName: "c2"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{crashing("coredns", 9, 2)}}}

	for _, tc := range []struct {
		name    string
		ev      evidence
		want    []string
		notWant []string
	}{
		{
			name: "connection refused",
			ev:   evidence{api: api, probeErr: dialError("10.0.0.1:6443", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), stage: StageWaitAPI},
			want: []string{"the API endpoint " + api + " cannot be reached from here", "10.0.0.1:6443: connection refused", "load balancer", "reachable from this machine at 10.0.0.1:6443"},
		},
		{
			name: "no route to host",
			ev:   evidence{api: api, probeErr: dialError("10.0.0.1:6443", &os.SyscallError{Syscall: "connect", Err: syscall.EHOSTUNREACH})},
			want: []string{"cannot be reached", "10.0.0.1:6443: no route to host"},
		},
		{
			name: "dial timeout",
			ev:   evidence{api: api, probeErr: dialError("10.0.0.1:6443", os.ErrDeadlineExceeded)},
			want: []string{"cannot be reached", "10.0.0.1:6443: i/o timeout"},
		},
		{
			name: "DNS failure",
			ev: evidence{api: api, probeErr: &url.Error{Op: "Get", URL: api + "/readyz", Err: &net.OpError{Op: "dial", Net: "tcp",
				Err: &net.DNSError{Err: "no such host", Name: "api.example.com", IsNotFound: true}}}},
			want: []string{"cannot be reached", "api.example.com: the name does not resolve: no such host"},
		},
		{
			name: "no answer in time",
			ev:   evidence{api: api, probeErr: &url.Error{Op: "Get", URL: api + "/readyz", Err: context.DeadlineExceeded}},
			want: []string{"cannot be reached", "api.example.com:6443: no answer within 5s"},
		},
		{
			name: "a timed-out request of a stage is not proof",
			ev: evidence{api: api, answered: true, stage: StageManifests, detail: "applying ConfigMap a/b: context deadline exceeded",
				runErr: fmt.Errorf("bootstrap stage manifests: %w", &url.Error{Op: "Patch", URL: api + "/api/v1/x", Err: context.DeadlineExceeded})},
			want:    []string{"applying ConfigMap a/b: context deadline exceeded"},
			notWant: []string{"cannot be reached"},
		},
		{
			name: "the wait for the API quotes a dial error as text",
			ev: evidence{api: api, answered: true, stage: StageWaitAPI, runErr: errors.New(`bootstrap stage wait-for-api: stage wait-for-api did not finish within 15m0s: the API at ` + api +
				` was not ready: Get "` + api + `/readyz?verbose=": dial tcp 10.0.0.7:6443: connect: no route to host; check that the controllers' kube-apiserver and etcd are running`)},
			want: []string{"cannot be reached", "10.0.0.7:6443: no route to host"},
		},
		{
			name: "a registry's DNS failure later is not the API's",
			ev: evidence{api: api, answered: true, stage: StageControlPlane,
				runErr: stageFailed(StageControlPlane, "pod kube-system/kube-apiserver-c1 on c1: container kube-apiserver waiting: ErrImagePull (dial tcp: lookup registry.example on 10.0.0.53:53: no such host)")},
			want:    []string{"ErrImagePull"},
			notWant: []string{"cannot be reached"},
		},
		{
			name: "certificate valid for other names",
			ev:   evidence{api: "https://10.0.0.99:6443", probeErr: verifyFailed(x509.HostnameError{Certificate: serving, Host: "10.0.0.99"})},
			want: []string{`not valid for "10.0.0.99"`, `valid for "api.example.com", "kubernetes", "10.0.0.1"`, "pki.extra_sans"},
		},
		{
			name: "certificate of an unknown authority",
			ev:   evidence{api: "https://10.0.0.99:6443", probeErr: verifyFailed(x509.UnknownAuthorityError{Cert: serving})},
			want: []string{"10.0.0.99:6443", `"api.example.com"`, "other cluster CA", "does not trust", "pki/ca.crt"},
		},
		{
			name: "the wait for the API quotes a name mismatch as text",
			ev: evidence{api: api, answered: true, stage: StageWaitAPI, runErr: errors.New(`bootstrap stage wait-for-api: the API at https://10.0.0.99:6443 was not ready: Get "https://10.0.0.99:6443/readyz?verbose=": ` +
				`tls: failed to verify certificate: x509: certificate is valid for kubernetes, 10.0.0.1, not 10.0.0.99; check that`)},
			want: []string{`not valid for "10.0.0.99"`, "valid for kubernetes, 10.0.0.1"},
		},
		{
			name: "readyz reports etcd failing",
			ev: evidence{api: api, answered: true, probeErr: errors.New("the server is currently unable to handle the request"),
				readyz: "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n", etcd: etcdReport{skipped: "not checked"}},
			want: []string{"etcd has no quorum", "/readyz reports etcd failed: reason withheld", "port 2380"},
		},
		{
			name: "the wait for the API quotes readyz's etcd checks",
			ev: evidence{api: api, answered: true, stage: StageWaitAPI, runErr: errors.New("bootstrap stage wait-for-api: the API at " + api +
				" was not ready: /readyz reports failing checks: etcd failed: reason withheld; etcd-readiness failed: reason withheld; check that")},
			want: []string{"etcd has no quorum", "etcd failed: reason withheld; etcd-readiness failed: reason withheld"},
		},
		{
			name: "etcd members answer without a leader",
			ev:   evidence{api: api, answered: true, stage: StageControlPlane, runErr: stageFailed(StageControlPlane, notRegistered), etcd: threeMembers(0)},
			want: []string{"etcd has no quorum", "0 of 3 etcd members answer from here with a leader", "c1: answers but knows no leader", "c2: context deadline exceeded"},
		},
		{
			name:    "etcd unreachable from here says nothing about etcd",
			ev:      evidence{api: api, answered: true, stage: StageControlPlane, runErr: stageFailed(StageControlPlane, notRegistered), etcd: threeMembers()},
			want:    []string{notRegistered},
			notWant: []string{"etcd"},
		},
		{
			name: "the apiserver's etcd check fails while etcd has a quorum",
			ev:   evidence{api: api, answered: true, readyz: "[-]etcd failed: reason withheld\n", etcd: threeMembers(1, 1, 1)},
			want: []string{"although 3 of 3 etcd members answer", "--etcd-servers"},
		},
		{
			name: "image not pullable",
			ev:   evidence{api: api, answered: true, stage: StageControlPlane, runErr: stageFailed(StageControlPlane, notRegistered), pods: []corev1.Pod{pullFailing}},
			want: []string{`pod kube-system/kube-apiserver-c1 on c1 cannot pull image "registry.example/kube-apiserver:v1"`, "ImagePullBackOff: Back-off pulling", "c1 reaches its registry"},
		},
		{
			name: "invalid image name of an init container, named by its spec",
			ev: evidence{api: api, answered: true, pods: []corev1.Pod{{
				ObjectMeta: metav1.ObjectMeta{Name: "liftoff-agent-x1", Labels: map[string]string{"k8s-app": generator.HostAgent}},
				Spec:       corev1.PodSpec{NodeName: "c2", InitContainers: []corev1.Container{{Name: "copy", Image: "Bad:Name"}}},
				Status:     corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{waiting("copy", "InvalidImageName", "")}},
			}}},
			want: []string{`pod kube-system/liftoff-agent-x1 on c2 cannot pull image "Bad:Name" for its container copy (InvalidImageName)`},
		},
		{
			name: "crash loop with the previous container's last log lines",
			ev:   evidence{api: api, answered: true, stage: StageControlPlane, runErr: stageFailed(StageControlPlane, notRegistered), pods: []corev1.Pod{scheduler}, logs: schedulerLogs},
			want: []string{"container kube-scheduler of pod kube-system/kube-scheduler-c1 on c1 keeps crashing: 4 restarts, last exit code 1 (Error)",
				"its last log lines:\nline 3\nline 4\nline 5\nline 6\nE0101 open /etc/kubernetes/scheduler.conf: no such file or directory"},
			notWant: []string{"line 2", "starting"},
		},
		{
			name:    "an image that cannot be pulled before a crash",
			ev:      evidence{api: api, answered: true, pods: []corev1.Pod{scheduler, pullFailing}, logs: schedulerLogs},
			want:    []string{"cannot pull image"},
			notWant: []string{"crashing"},
		},
		{
			name: "restarted but Ready now is not crashing",
			ev: func() evidence {
				p := controlPlanePod("kube-scheduler-c1", "c1", crashing("kube-scheduler", 2, 1))
				p.Status.ContainerStatuses[0].Ready = true
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
				return evidence{api: api, answered: true, runErr: stageFailed(StageControlPlane, notRegistered), pods: []corev1.Pod{p}}
			}(),
			want: []string{notRegistered},
		},
		{
			name:    "a crashing pod outside the control plane the error does not name",
			ev:      evidence{api: api, answered: true, runErr: stageFailed(StageControlPlane, notRegistered), pods: []corev1.Pod{coredns}},
			want:    []string{notRegistered},
			notWant: []string{"coredns"},
		},
		{
			name: "a crashing pod the error names",
			ev: evidence{api: api, answered: true, pods: []corev1.Pod{coredns},
				runErr: stageFailed(StageVerify, "pod kube-system/coredns-7d4f on c2: container coredns waiting: CrashLoopBackOff")},
			want: []string{"container coredns of pod kube-system/coredns-7d4f on c2 keeps crashing: 9 restarts, last exit code 2"},
		},
		{
			name: "otherwise what the stage still missed",
			ev: evidence{api: api, answered: true, stage: StageControlPlane, detail: "the whole detail",
				runErr: stageFailed(StageControlPlane, "DaemonSet kube-system/kube-apiserver has no pod on c1 yet", "Deployment kube-system/kube-scheduler has 0 of 1 replicas Ready and up to date")},
			want:    []string{"DaemonSet kube-system/kube-apiserver has no pod on c1 yet; Deployment kube-system/kube-scheduler has 0 of 1"},
			notWant: []string{"bootstrap stage", "the whole detail"},
		},
		{
			name: "otherwise the missing Nodes, which explain their pods",
			ev: evidence{api: api, answered: true, stage: StageControlPlane,
				runErr: stageFailed(StageControlPlane, notRegistered, "pod kube-apiserver-c1 does not exist", "Node c2 is NotReady since 2026-01-01T00:00:00Z: KubeletNotReady container runtime network not ready")},
			want:    []string{notRegistered + "; Node c2 is NotReady since 2026-01-01T00:00:00Z: KubeletNotReady"},
			notWant: []string{"pod kube-apiserver-c1"},
		},
		{
			name: "otherwise the stage's own error",
			ev: evidence{api: api, answered: true, stage: StageManifests, detail: "ConfigMap team-a/bad in manifests/40-bad.yaml (document 1): unknown field spec",
				runErr: errors.New("bootstrap stage manifests: ConfigMap team-a/bad in manifests/40-bad.yaml (document 1): unknown field spec (nothing was torn down; resume with --from manifests)")},
			want:    []string{"ConfigMap team-a/bad in manifests/40-bad.yaml (document 1): unknown field spec"},
			notWant: []string{"resume with"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.ev)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("cause %q\ndoes not say %q", got, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("cause %q\nsays %q", got, w)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	red := redactor{secrets: []string{"s3cr3t-bearer-value", "abc"}}
	in := "token abcdef.0123456789abcdef in a line\nAuthorization: Bearer eyJhbGciOi.x-y_z\nkey:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n" +
		"value s3cr3t-bearer-value, and abc stays\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	got := string(red.apply([]byte(in)))
	want := "token [token removed] in a line\nAuthorization: Bearer [token removed]\nkey:\n[private key removed]\n" +
		"value [secret removed], and abc stays\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	if got != want {
		t.Errorf("redacted:\n%s\nwant:\n%s", got, want)
	}
}

// bundleOf returns the diagnosis bundle an error names, checking that it is the only one under root
// and that nothing half-written is left beside it.
func bundleOf(t *testing.T, err error, root string) string {
	t.Helper()
	m := regexp.MustCompile(`diagnosis written to (\S+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q names no diagnosis", err)
	}
	entries, rerr := os.ReadDir(root)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(entries) != 1 || filepath.Join(root, entries[0].Name()) != m[1] || !regexp.MustCompile(`^\d{8}T\d{6}Z$`).MatchString(entries[0].Name()) {
		t.Fatalf("%s holds %v; want only the bundle %s, named by its UTC time", root, entries, m[1])
	}
	return m[1]
}

// bundleFilesOf reads every file of a bundle, by its path in it.
func bundleFilesOf(t *testing.T, bundle string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(bundle, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(bundle, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRunDiagnosesFailure fails a run against a real apiserver, a controller's Node never
// registering, and checks the diagnosis: its cause in the error, and a bundle holding the evidence
// and no secret.
func TestRunDiagnosesFailure(t *testing.T) {
	cfg := apiservertest.Start(t)
	apiservertest.WaitReady(t, cfg)
	client := kubernetes.NewForConfigOrDie(cfg)
	const token = "k3x9q2.0123456789abcdef"
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVlQvWyrMv8ABCDEFoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"

	dir := filepath.Join(t.TempDir(), "out")
	assets := &generator.Assets{Cluster: "test"}
	assets.Add(
		generator.Asset{Path: "ignition/c1.ign", Kind: generator.KindIgnition, Role: "controller", Node: "c1", Mode: 0o600, Data: []byte("{}")},
		generator.Asset{Path: "pki/bootstrap-tokens/machines/c1", Kind: generator.KindBootstrapToken, Mode: 0o600, Data: []byte(token + "\n")},
		generator.Asset{Path: "manifests/20-namespace.yaml", Kind: generator.KindManifest, Mode: 0o644, Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n")},
	)
	assets.Sort()
	if err := outdir.Write(dir, assets); err != nil {
		t.Fatal(err)
	}
	// Evidence holding secrets, which the bundle must not repeat: a control-plane pod that is never
	// scheduled, with the token in its environment, and an event quoting a key.
	ctx := t.Context()
	if _, err := client.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-c1", Labels: map[string]string{"tier": "control-plane"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.0.0",
			Env: []corev1.EnvVar{{Name: "TOKEN", Value: token}}}}}}
	if _, err := client.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	event := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-c1.1", Namespace: "kube-system"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "kube-apiserver-c1"},
		Type:           corev1.EventTypeWarning, Reason: "Leaked", Message: "token " + token + " and key\n" + key,
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1}
	if _, err := client.CoreV1().Events("kube-system").Create(ctx, event, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var diagnosisEvent *Event
	begin := time.Now()
	_, err := Run(ctx, Options{Dir: dir, Config: cfg, Timeout: 2 * time.Minute,
		StageTimeouts: map[Stage]time.Duration{StageControlPlane: 5 * time.Second},
		Progress: func(e Event) {
			if e.Stage == "diagnosis" {
				diagnosisEvent = &e
			}
		}})
	took := time.Since(begin)
	if err == nil {
		t.Fatal("a run whose controller never registers did not fail")
	}
	t.Logf("after %s the run said:\n%v", took.Round(100*time.Millisecond), err)
	if took > time.Minute {
		t.Errorf("the failed run and its diagnosis took %s", took)
	}
	if !regexp.MustCompile(`stage control-plane.*\n(?s:.*)\nlikely cause: Node c1 has not registered \(is its kubelet running and able to reach the API\?\)\ndiagnosis written to `).MatchString(err.Error()) {
		t.Errorf("error %q does not end with the likely cause and the diagnosis's path", err)
	}
	if !strings.Contains(err.Error(), "stage control-plane did not finish within 5s") {
		t.Errorf("error %q lost the stage's own error", err)
	}
	bundle := bundleOf(t, err, DiagnosisDir(dir))
	if diagnosisEvent == nil || diagnosisEvent.Result != ResultWritten || diagnosisEvent.Detail != bundle {
		t.Errorf("diagnosis event %+v; want result %s naming %s", diagnosisEvent, ResultWritten, bundle)
	}
	files := bundleFilesOf(t, bundle)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	t.Logf("bundle %s: %s", bundle, strings.Join(names, ", "))
	for _, name := range []string{"summary.txt", "stages.json", "pods.txt", "pods.json", "events.txt", "nodes.txt", "etcd.txt", "logs/kube-apiserver-c1_kube-apiserver.log"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the bundle has no %s", name)
		}
	}
	for name, data := range files {
		for _, secret := range []string{"BEGIN", "PRIVATE KEY", token, "0123456789abcdef", cfg.BearerToken} {
			if strings.Contains(data, secret) {
				t.Errorf("%s holds %q", name, secret)
			}
		}
	}
	t.Logf("summary.txt:\n%s", files["summary.txt"])
	for name, want := range map[string][]string{
		"summary.txt": {"likely cause:\n    Node c1 has not registered (is its kubelet running and able to reach the API?)\n\n", "control-plane  failed", "answers ok"},
		"pods.txt":    {"kube-apiserver-c1  no node  Pending  0/1", "not Ready:\n  - pod kube-system/kube-apiserver-c1 on no node"},
		"pods.json":   {`"TOKEN"`, "[token removed]"},
		"events.txt":  {"Warning Leaked Pod kube-apiserver-c1: token [token removed] and key [private key removed]"},
		"nodes.txt":   {"no Node has registered"},
		"etcd.txt":    {"etcd was not checked", "no such file"},
		"logs/kube-apiserver-c1_kube-apiserver.log": {"(empty: the container has not run yet"},
	} {
		for _, w := range want {
			if !strings.Contains(files[name], w) {
				t.Errorf("%s does not say %q:\n%s", name, w, files[name])
			}
		}
	}
	var rec Record
	if err := json.Unmarshal([]byte(files["stages.json"]), &rec); err != nil {
		t.Fatalf("stages.json: %v", err)
	}
	if n := len(rec.Stages); n == 0 || rec.Stages[n-1].Stage != StageControlPlane || rec.Stages[n-1].Result != ResultFailed || rec.Status != StatusFailed {
		t.Errorf("stages.json: %+v; want the record ending with control-plane failed", rec)
	}
}

// TestRunDiagnosesUnreachableAPI: with nothing listening at the API's address, the diagnosis says
// so, written where Options.DiagnosisDir says.
func TestRunDiagnosesUnreachableAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	writeOutput(t, dir, manifests(1))
	diagnoses := filepath.Join(t.TempDir(), "diagnoses")
	addr := apiservertest.FreeLoopback(t) + ":6443"
	cfg := &rest.Config{Host: "https://" + addr, BearerToken: "liftoff-unreachable-token", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	_, err := Run(context.Background(), Options{Dir: dir, Config: cfg, Timeout: 2 * time.Second, DiagnosisDir: diagnoses})
	if err == nil {
		t.Fatal("no error without an API")
	}
	t.Logf("the run said:\n%v", err)
	want := fmt.Sprintf("likely cause: the API endpoint https://%s cannot be reached from here (%s: connection refused: nothing listens there); the controllers' kube-apiserver, or the load balancer in front of them, must be running and reachable from this machine at %s",
		addr, addr, addr)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	files := bundleFilesOf(t, bundleOf(t, err, diagnoses))
	for _, name := range []string{"pods.txt", "pods.json", "events.txt", "nodes.txt"} {
		if !strings.Contains(files[name], "could not be gathered: the API at https://"+addr+" did not answer") {
			t.Errorf("%s: %q; want it to say why it was not gathered", name, files[name])
		}
	}
	if !strings.Contains(files["summary.txt"], "not gathered:\n    events.txt: the API at") {
		t.Errorf("summary.txt does not list what was not gathered:\n%s", files["summary.txt"])
	}
	if _, err := os.Stat(DiagnosisDir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a diagnosis went into the output directory although DiagnosisDir is set: %v", err)
	}
}

// TestRunInterruptedIsNotDiagnosed: a run its caller cancels did not fail, and leaves no diagnosis.
func TestRunInterruptedIsNotDiagnosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	writeOutput(t, dir, manifests(1))
	cfg := &rest.Config{Host: "https://" + apiservertest.FreeLoopback(t) + ":6443", BearerToken: "x", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	_, err := Run(ctx, Options{Dir: dir, Config: cfg, Timeout: time.Minute})
	if err == nil || strings.Contains(err.Error(), "likely cause") {
		t.Errorf("interrupted run: %v; want an error without a diagnosis", err)
	}
	if _, err := os.Stat(DiagnosisDir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an interrupted run wrote a diagnosis: %v", err)
	}
}

// TestGatherEtcd asks a real etcd member, serving the certificates of a rendered cluster, for its
// status as a diagnosis does, beside a member that does not run.
func TestGatherEtcd(t *testing.T) {
	etcd := testbin.MustPath(t, "etcd")
	ip1, ip2 := apiservertest.FreeLoopback(t), apiservertest.FreeLoopback(t)
	for ip2 == ip1 {
		ip2 = apiservertest.FreeLoopback(t)
	}
	c, diags := spec.Parse([]byte(fmt.Sprintf(`cluster "diag" {
  api_server             = "https://%s:6443"
  allow_even_controllers = true
  controller "c1" {
    ip = "%s"
  }
  controller "c2" {
    ip = "%s"
  }
}
`, ip1, ip1, ip2)), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	res := renderSpec(t, c)
	dir := filepath.Join(t.TempDir(), "out")
	if err := outdir.Write(dir, res.Assets); err != nil {
		t.Fatal(err)
	}
	pki := func(p string) string { return filepath.Join(dir, generator.OutPKIDir, p) }
	// One member alone, on its rendered server certificate, requiring client certificates.
	apiservertest.StartProcess(t, "etcd", filepath.Join(t.TempDir(), "etcd.log"), etcd, "--name", "c1", "--data-dir", t.TempDir(),
		"--listen-client-urls", "https://"+ip1+":2379", "--advertise-client-urls", "https://"+ip1+":2379",
		"--listen-peer-urls", "http://"+ip1+":2380", "--initial-advertise-peer-urls", "http://"+ip1+":2380", "--initial-cluster", "c1=http://"+ip1+":2380",
		"--cert-file", pki("etcd/c1/server.crt"), "--key-file", pki("etcd/c1/server.key"), "--trusted-ca-file", pki(generator.EtcdCACert), "--client-cert-auth")

	var rep etcdReport
	deadline := time.Now().Add(time.Minute)
	for {
		rep = gatherEtcd(t.Context(), dir, []string{"c1", "c2"})
		if len(rep.members) == 2 && rep.members[0].reachable && rep.members[0].leader != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd c1 never answered with a leader: %s %s", rep.skipped, rep.brief())
		}
		time.Sleep(500 * time.Millisecond)
	}
	c1, c2 := rep.members[0], rep.members[1]
	if c1.endpoint != "https://"+ip1+":2379" || c1.leader != c1.id || c1.raftTerm == 0 || c1.dbSize == 0 || c1.version == "" {
		t.Errorf("c1: %+v; want it reachable at its rendered address, leading, with a raft term, a db size and a version", c1)
	}
	if c2.endpoint != "https://"+ip2+":2379" || c2.reachable || c2.err == "" {
		t.Errorf("c2: %+v; want it unreachable, saying why", c2)
	}
	text := string(etcdText(rep))
	t.Logf("etcd.txt:\n%s", text)
	for _, want := range []string{"c1 https://" + ip1 + ":2379\n    reachable: yes", "leader: this member", "c2 https://" + ip2 + ":2379\n    reachable: no: ", "quorum: no: 1 of 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("etcd.txt does not say %q", want)
		}
	}
	if cause := classify(evidence{answered: true, etcd: rep}); !strings.Contains(cause, "etcd has no quorum: 1 of 2 etcd members answer from here with a leader") {
		t.Errorf("cause %q; want etcd without quorum", cause)
	}
}
