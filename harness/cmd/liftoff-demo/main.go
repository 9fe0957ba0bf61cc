// Command liftoff-demo renders a cluster spec for the local harness (examples/demo/local.hcl by
// default) and boots it on this machine: every machine a set of namespaces running the real
// kubelet, containerd, etcd and control plane, laid out by the real Ignition. It shows its
// progress, then the nodes, the control plane's health and the add-ons, and keeps the cluster
// running until interrupted (Ctrl-C or SIGTERM), when it stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

func main() {
	specPath := flag.String("spec", "examples/demo/local.hcl", "cluster spec whose machines share the /24 of api_server")
	work := flag.String("work", "", "directory for the rendered files and the machines (default: a new temporary directory, removed at exit)")
	keep := flag.Bool("keep", false, "keep the work directory at exit")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up booting after this long (a first run builds Kubernetes from source)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *specPath, *work, *keep, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "liftoff-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, specPath, work string, keep bool, timeout time.Duration) (err error) {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "liftoff-demo-"); err != nil {
			return err
		}
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	dir := filepath.Join(work, "out")

	bootCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, name := range []string{"ignition", "etcd", "etcdctl", "etcdutl", "kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		t := time.Now()
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				step("building %s from source (once; Kubernetes takes several minutes on 2 cores)", name)
			}
		}()
		p, err := testbin.Path(bootCtx, name)
		close(done)
		if err != nil {
			return fmt.Errorf("%w\n(`make binaries` builds the programs and shows what failed)", err)
		}
		step("%-24s %s (%s)", name, p, time.Since(t).Round(time.Millisecond))
	}

	step("rendering %s into %s", specPath, dir)
	if err := harness.Render(bootCtx, specPath, dir); err != nil {
		return err
	}

	step("building the images, laying out the machines with Ignition and powering them on")
	c, err := harness.Boot(bootCtx, harness.Options{Dir: dir, Work: work})
	if c != nil {
		defer func() {
			step("stopping the cluster")
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, cerr)
				return
			}
			step("stopped: no process of the cluster is left")
		}()
	}
	if err != nil {
		return err
	}
	for _, m := range c.Machines() {
		step("  %-8s %-10s %s  root %s", m.Name, m.Role, m.IP, m.Root)
	}
	step("API load balancer: %s", c.APIServer)

	step("bootstrap: waiting for the API, then applying the manifests")
	_, err = bootstrap.Run(bootCtx, bootstrap.Options{Dir: dir, Progress: func(e bootstrap.Event) {
		if e.Result == bootstrap.ResultStarted || e.Result == bootstrap.ResultDone {
			return
		}
		line := fmt.Sprintf("  %-12s %-9s %s", e.Stage, e.Result, e.Object)
		if e.Detail != "" && e.Result != bootstrap.ResultCreated {
			line += "  (" + e.Detail + ")"
		}
		step("%s", line)
	}})
	if err != nil {
		return err
	}
	cfg, err := c.AdminConfig()
	if err != nil {
		return err
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	step("waiting for every node to join (TLS bootstrap) and report Ready")
	if err := harness.WaitForNodes(bootCtx, client, c.NodeNames(), nil); err != nil {
		return err
	}
	step("waiting for every pod to be Ready")
	err = harness.WaitForPods(bootCtx, client, "", "", "every pod Ready", func(ps []*corev1.Pod) (bool, string) {
		ready := 0
		for _, p := range ps {
			if harness.PodReady(p) {
				ready++
			}
		}
		want := 2*len(c.Machines()) + 2
		return ready >= want && ready == len(ps), fmt.Sprintf("%d of %d pods Ready", ready, len(ps))
	})
	if err != nil {
		return err
	}
	step("cluster up in %s", time.Since(start).Round(time.Second))
	fmt.Fprintln(out)
	if err := report(ctx, out, c, client); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe cluster is running. Try:\n  kubectl --kubeconfig %s get nodes,pods -A\nPress Ctrl-C to stop it.\n\n", c.AdminKubeconfig())
	<-ctx.Done()
	return nil
}

// report prints the nodes, etcd's members, the apiservers, the leaders and the memory in use.
func report(ctx context.Context, out io.Writer, c *harness.Cluster, client kubernetes.Interface) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "NODE\tROLE\tREADY\tADDRESS\tPOD CIDR\tKUBELET")
	for _, n := range nodes.Items {
		addr := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				addr = a.Address
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\n", n.Name, harness.NodeRoles(&n), harness.NodeReady(&n), addr, n.Spec.PodCIDR, n.Status.NodeInfo.KubeletVersion)
	}
	fmt.Fprintln(w)
	members, err := c.EtcdMembers(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "ETCD MEMBER\tCLIENT URL\tHEALTHY\tLEADER\tSTATUS")
	for _, m := range members {
		fmt.Fprintf(w, "%s\t%s\t%v\t%v\t%s\n", m.Name, m.ClientURL, m.Healthy, m.Leader, m.Detail)
	}
	fmt.Fprintln(w)
	servers, err := c.APIServers(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "APISERVER\tURL\tREADY\t/READYZ")
	for _, s := range servers {
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", s.Machine, s.URL, s.Ready, s.Detail)
	}
	fmt.Fprintln(w)
	leaders, err := harness.Leaders(ctx, client)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "COMPONENT\tLEADER\tRENEWED")
	for _, l := range leaders {
		fmt.Fprintf(w, "%s\t%s\t%s ago\n", l.Component, l.Holder, time.Since(l.Renewed).Round(time.Second))
	}
	fmt.Fprintln(w)
	pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app in (kube-dns, kube-proxy, flannel)"})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "ADD-ON POD\tNODE\tPHASE\tREADY\tIP")
	for _, p := range pods.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", p.Name, p.Spec.NodeName, p.Status.Phase, harness.PodReady(&p), p.Status.PodIP)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	mem := c.Memory()
	fmt.Fprintf(out, "\nmemory: %s\n", strings.TrimSpace(mem.String()))
	return nil
}
