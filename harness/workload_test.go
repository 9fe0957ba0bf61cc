package harness_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/harness"
)

// testImage is the image of the tests' own workloads: busybox, built locally like every image.
const testImage = "liftoff.test/busybox:1.35"

// checkWorkloads runs a web server on one worker and a client on the other and checks, through the
// real kubectl with the rendered admin kubeconfig, what a user of the cluster relies on: pod to
// pod across machines over the pod network (flannel), a Service's IP (kube-proxy) by its DNS name
// (CoreDNS), the API through its service IP, and `kubectl exec` and `kubectl logs` (the
// apiserver reaching the kubelets over TLS).
func checkWorkloads(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	pods := client.CoreV1().Pods("default")
	pod := func(name, node string, labels map[string]string, cmd string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{
				NodeName:                      node,
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{
					Name: name, Image: testImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"sh", "-c", cmd},
				}},
			},
		}
	}
	web := pod("web", "worker-1", map[string]string{"app": "web"},
		"mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -v -p 8080 -h /www")
	cl := pod("client", "worker-2", nil, "exec sleep 100000")
	for _, p := range []*corev1.Pod{web, cl} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var webIP string
	for _, name := range []string{"web", "client"} {
		err := harness.WaitForPod(ctx, client, "default", name, func(p *corev1.Pod) (bool, string) {
			if name == "web" {
				webIP = p.Status.PodIP
			}
			return harness.PodReady(p), harness.DescribePod(p)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	kubectl := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", c.AdminKubeconfig()}, args...)...).CombinedOutput()
		return string(out), err
	}
	// Retried for a short while: the Service's endpoints and rules appear shortly after the pod is Ready.
	eventually := func(what string, check func() (string, bool)) {
		t.Helper()
		var last string
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			out, ok := check()
			if ok {
				t.Logf("%s: %s", what, strings.TrimSpace(out))
				return
			}
			last = out
		}
		t.Errorf("%s: not seen within a minute; last output: %s", what, last)
	}
	// An HTTP request with nc, which takes an address; the name is resolved by nslookup.
	get := func(addr string, port string) (string, error) {
		return kubectl("exec", "client", "--", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 `+addr+" "+port)
	}
	eventually("pod to pod across workers", func() (string, bool) {
		out, err := get(webIP, "8080")
		return out, err == nil && strings.Contains(out, "hello from web")
	})
	eventually("a Service by its DNS name", func() (string, bool) {
		out, err := kubectl("exec", "client", "--", "nslookup", "web.default.svc.cluster.local")
		if err != nil {
			return out, false
		}
		// nslookup prints the server's address first, then the answer.
		fields := strings.Fields(out[strings.LastIndex(out, "Name:"):])
		if len(fields) < 4 || fields[2] != "Address:" {
			return out, false
		}
		resp, err := get(fields[3], "80")
		return out + resp, err == nil && strings.Contains(resp, "hello from web")
	})
	eventually("CoreDNS resolves the API's name", func() (string, bool) {
		out, err := kubectl("exec", "client", "--", "nslookup", "kubernetes.default.svc.cluster.local")
		return out, err == nil && strings.Contains(out, "10.3.0.1")
	})
	eventually("the API through its service IP", func() (string, bool) {
		// A TLS client hello answered by a TLS record (0x16 handshake, or 0x15 alert for this
		// minimal hello) proves a TLS server, the apiserver, is behind the service IP.
		out, err := kubectl("exec", "client", "--", "sh", "-c",
			`printf '\026\003\001\000\055\001\000\000\051\003\003AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\000\000\002\023\001\001\000' | nc -w 3 10.3.0.1 443 | od -An -tx1 -N1`)
		return out, err == nil && (strings.TrimSpace(out) == "16" || strings.TrimSpace(out) == "15")
	})
	eventually("kubectl logs", func() (string, bool) {
		// httpd -v logs each request's client and status.
		out, err := kubectl("logs", "web")
		return out, err == nil && strings.Contains(out, "response:200")
	})
	for _, p := range []string{"web", "client"} {
		pods.Delete(ctx, p, metav1.DeleteOptions{})
	}
	client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{})
}
