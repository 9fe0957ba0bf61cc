package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// A failed run is diagnosed: the evidence it left behind is gathered, the likeliest cause is named
// in words the user can act on, and both are written into a bundle directory to read or to share.

// DiagnosisDir is where failed runs write their diagnoses when Options.DiagnosisDir is empty, one
// directory per run named by its UTC time: beside the output directory DIR, as DIR.diagnosis,
// because a render replaces DIR whole and refuses to drop files it did not write.
func DiagnosisDir(dir string) string { return filepath.Clean(dir) + ".diagnosis" }

// ResultWritten reports where a failed run's diagnosis was written.
const ResultWritten = "written"

// diagnosisTimeout bounds gathering, which starts once the run's own deadline may have passed: a
// diagnosis waiting on a dead API would only delay the error it explains.
const diagnosisTimeout = 30 * time.Second

// Limits of what a diagnosis gathers and quotes.
const (
	diagnosisEvents   = 300
	diagnosisLogLines = 100
	// causeLogLines of a crashing container's log are quoted in the cause itself.
	causeLogLines = 5
	// probeTimeout bounds asking the API once more whether it answers.
	probeTimeout = 5 * time.Second
	// requestTimeout bounds each request for evidence, so one slow answer leaves time for the others.
	requestTimeout = 10 * time.Second
	// etcdTimeout bounds each etcd member's status request.
	etcdTimeout = 5 * time.Second
)

// evidence is what a diagnosis gathered about a failed run. Each part that could not be gathered
// carries the error saying why instead.
type evidence struct {
	runErr error
	// stage is the stage that failed, and detail its recorded error.
	stage  Stage
	detail string
	// api is the API's address. Asked once more for /readyz, it answered (possibly not ready,
	// with readyz its verbose answer) or not, probeErr saying what went wrong.
	api      string
	answered bool
	probeErr error
	readyz   string

	pods      []corev1.Pod
	podsErr   error
	events    []corev1.Event
	eventsErr error
	nodes     []corev1.Node
	nodesErr  error
	logs      []containerLog
	etcd      etcdReport
}

// containerLog is the end of one container's log, or of its previous instance's.
type containerLog struct {
	pod, container string
	previous       bool
	text           string
	err            error
}

func (l containerLog) file() string {
	name := l.pod + "_" + l.container
	if l.previous {
		name += "_previous"
	}
	return filepath.Join("logs", name+".log")
}

// etcdReport is etcd's members as checked directly from here, with the apiserver's etcd client
// certificate; skipped says why they were not checked.
type etcdReport struct {
	skipped string
	members []etcdMemberStatus
}

// etcdMemberStatus is one member's answer to a status request, or why there was none.
type etcdMemberStatus struct {
	node, endpoint string
	reachable      bool
	id, leader     uint64
	raftTerm       uint64
	dbSize         int64
	version        string
	errors         []string
	err            string
}

// withLeader counts the members that answered and know a leader.
func (e etcdReport) withLeader() int {
	n := 0
	for _, m := range e.members {
		if m.reachable && m.leader != 0 {
			n++
		}
	}
	return n
}

func (e etcdReport) reachable() int {
	n := 0
	for _, m := range e.members {
		if m.reachable {
			n++
		}
	}
	return n
}

// quorum says whether a majority of the members answer and know a leader.
func (e etcdReport) quorum() bool { return e.withLeader() > len(e.members)/2 }

// diagnosedError is a failed run's error followed by its likely cause and where the diagnosis is.
type diagnosedError struct {
	err           error
	cause, bundle string
}

// diagnosed adds a diagnosis to a failed run's error.
func diagnosed(err error, bundle, cause string) error {
	return &diagnosedError{err: err, cause: cause, bundle: bundle}
}

func (e *diagnosedError) Error() string {
	where := "diagnosis written to " + e.bundle
	if e.bundle == "" {
		where = "no diagnosis was written (see the diagnosis warning among the events)"
	}
	return fmt.Sprintf("%s\nlikely cause: %s\n%s", e.err, indent(e.cause, "    "), where)
}

func (e *diagnosedError) Unwrap() error { return e.err }

// diagnose gathers what a failed run left behind, names the likeliest cause, and writes both into a
// new bundle directory: under r.diagnosisDir, or DiagnosisDir(dir), where dir is the output directory,
// whose PKI reaches etcd. Nothing it gathers fails it: a part that cannot be gathered becomes a
// file saying why. It returns the bundle's path, empty when the bundle could not be written.
func (r *run) diagnose(ctx context.Context, dir string, runErr error) (bundle string, cause string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), diagnosisTimeout)
	defer cancel()
	now := time.Now()
	ev := r.gather(ctx, dir, runErr)
	cause = classify(ev)
	root := r.diagnosisDir
	if root == "" {
		root = DiagnosisDir(dir)
	}
	files := bundleFiles(ev, cause, r.record, r.plan, now)
	bundle, err := writeBundle(root, now, files, r.redactor(dir))
	if err != nil {
		r.emit(Event{Stage: "diagnosis", Result: ResultWarning, Detail: "the diagnosis was not written: " + err.Error()})
		return "", cause
	}
	r.emit(Event{Stage: "diagnosis", Result: ResultWritten, Detail: bundle})
	return bundle, cause
}

// gather collects the evidence: the API's answer now, kube-system's pods and events, the nodes,
// the control-plane containers' logs, and etcd's members. etcd is asked directly, at the same
// time, since it matters most when the API cannot say.
func (r *run) gather(ctx context.Context, dir string, runErr error) evidence {
	ev := evidence{runErr: runErr}
	if r.record != nil {
		for _, s := range r.record.Stages {
			if s.Result == ResultFailed {
				ev.stage, ev.detail = s.Stage, s.Detail
			}
		}
	}
	etcd := make(chan etcdReport, 1)
	go func() { etcd <- gatherEtcd(ctx, dir, r.plan.controllers) }()
	r.gatherFromAPI(ctx, &ev)
	ev.etcd = <-etcd
	return ev
}

// gatherFromAPI asks the API whether it answers and, when it does, for kube-system's pods and
// events, the nodes, and the logs of the pods that can explain the failure.
func (r *run) gatherFromAPI(ctx context.Context, ev *evidence) {
	if r.config != nil {
		ev.api = r.config.Host
	}
	if r.client == nil {
		ev.probeErr = errors.New("no client for the API was configured")
	} else {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		body, err := r.client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "").DoRaw(pctx)
		cancel()
		var status apierrors.APIStatus
		ev.probeErr, ev.readyz = err, string(body)
		ev.answered = err == nil || errors.As(err, &status)
	}
	if !ev.answered {
		notAsked := fmt.Errorf("the API at %s did not answer: %w", ev.api, ev.probeErr)
		ev.podsErr, ev.eventsErr, ev.nodesErr = notAsked, notAsked, notAsked
		return
	}
	call := func(f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return f(cctx)
	}
	ev.podsErr = call(func(ctx context.Context) error {
		l, err := r.client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err == nil {
			ev.pods = l.Items
		}
		return err
	})
	ev.eventsErr = call(func(ctx context.Context) error {
		l, err := r.client.CoreV1().Events(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err == nil {
			ev.events = l.Items
		}
		return err
	})
	ev.nodesErr = call(func(ctx context.Context) error {
		l, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			ev.nodes = l.Items
		}
		return err
	})
	sort.Slice(ev.pods, func(i, j int) bool { return ev.pods[i].Name < ev.pods[j].Name })
	sort.Slice(ev.nodes, func(i, j int) bool { return ev.nodes[i].Name < ev.nodes[j].Name })
	sort.SliceStable(ev.events, func(i, j int) bool { return eventTime(ev.events[i]).Before(eventTime(ev.events[j])) })
	if n := len(ev.events); n > diagnosisEvents {
		ev.events = ev.events[n-diagnosisEvents:]
	}

	for _, p := range relevantPods(ev.pods, ev.runErr) {
		statuses := map[string]corev1.ContainerStatus{}
		for _, cs := range podContainerStatuses(&p) {
			statuses[cs.Name] = cs
		}
		for _, c := range podContainers(&p) {
			ev.logs = append(ev.logs, containerLog{pod: p.Name, container: c.Name})
			if statuses[c.Name].RestartCount > 0 {
				ev.logs = append(ev.logs, containerLog{pod: p.Name, container: c.Name, previous: true})
			}
		}
	}
	// Logs come from the kubelets through the API; a few at a time, since a kubelet that does not
	// answer holds its request until the deadline.
	sem := make(chan struct{}, 4)
	var lwg sync.WaitGroup
	for i := range ev.logs {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			l := &ev.logs[i]
			tail := int64(diagnosisLogLines)
			l.err = call(func(ctx context.Context) error {
				b, err := r.client.CoreV1().Pods(metav1.NamespaceSystem).GetLogs(l.pod, &corev1.PodLogOptions{
					Container: l.container, Previous: l.previous, TailLines: &tail}).DoRaw(ctx)
				l.text = string(b)
				return err
			})
		}()
	}
	lwg.Wait()
}

// relevantPods are the pods whose state can explain a failed run, those its error names first:
// the control plane's (label tier=control-plane), the host agents', and any the error names.
func relevantPods(pods []corev1.Pod, runErr error) []corev1.Pod {
	text := ""
	if runErr != nil {
		text = runErr.Error()
	}
	named := func(p *corev1.Pod) bool { return strings.Contains(text, "pod kube-system/"+p.Name+" ") }
	var out []corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Labels["tier"] == "control-plane" || p.Labels["k8s-app"] == generator.HostAgent || named(p) {
			out = append(out, *p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return named(&out[i]) && !named(&out[j]) })
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// gatherEtcd asks every controller's etcd member for its status, as the apiserver connects: with
// the etcd CA and the apiserver's etcd client certificate from the output directory, at the
// address in the member's server certificate.
func gatherEtcd(ctx context.Context, dir string, controllers []string) etcdReport {
	if len(controllers) == 0 {
		return etcdReport{skipped: "the render names no controllers, so there is no etcd member to check"}
	}
	pkiDir := filepath.Join(dir, generator.OutPKIDir)
	tlsCfg, err := EtcdClientTLS(pkiDir)
	if err != nil {
		return etcdReport{skipped: "etcd was not checked: the apiserver's etcd client certificate is not usable from the output directory: " + err.Error()}
	}
	var rep etcdReport
	var endpoints []string
	for _, node := range controllers {
		m := etcdMemberStatus{node: node}
		if member, err := etcdMember(pkiDir, node, spec.RoleController); err != nil {
			m.err = err.Error()
		} else {
			m.endpoint = member.ClientURL
			endpoints = append(endpoints, m.endpoint)
		}
		rep.members = append(rep.members, m)
	}
	if len(endpoints) == 0 {
		return rep
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: etcdTimeout, Logger: zap.NewNop()})
	if err != nil {
		rep.skipped = "etcd was not checked: " + err.Error()
		return rep
	}
	defer cli.Close()
	// Each member on its own deadline: a dead one must not use up the others' time.
	var wg sync.WaitGroup
	for i := range rep.members {
		m := &rep.members[i]
		if m.endpoint == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, etcdTimeout)
			defer cancel()
			st, err := cli.Status(sctx, m.endpoint)
			if err != nil {
				m.err = err.Error()
				return
			}
			m.reachable = true
			if st.Header != nil {
				m.id = st.Header.MemberId
			}
			m.leader, m.raftTerm, m.dbSize, m.version, m.errors = st.Leader, st.RaftTerm, st.DbSize, st.Version, st.Errors
		}()
	}
	wg.Wait()
	return rep
}

// EtcdClientTLS is the client TLS configuration of the apiservers towards etcd, from the PKI of a
// rendered output directory (DIR/pki): the etcd CA and the apiserver's etcd client certificate.
func EtcdClientTLS(pkiDir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(pkiDir, generator.EtcdCACert))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", filepath.Join(pkiDir, generator.EtcdCACert))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, generator.APIServerEtcdCert), filepath.Join(pkiDir, generator.APIServerEtcdKey))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// certificateAddress is the first address a certificate is valid for: an etcd member's server
// certificate holds exactly its controller's address.
func certificateAddress(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("%s holds no certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case len(cert.IPAddresses) > 0:
		return cert.IPAddresses[0].String(), nil
	case len(cert.DNSNames) > 0:
		return cert.DNSNames[0], nil
	}
	return "", fmt.Errorf("%s names no address", path)
}

// classify names the likeliest cause of a failed run, trying the causes in the order in which one
// hides the others: an API that cannot be reached, or whose certificate does not match, shows
// nothing else; an etcd without quorum stops the API; a pod that cannot pull its image or keeps
// crashing holds up the control plane. Otherwise the failed stage's own words are the cause.
func classify(ev evidence) string {
	for _, c := range []func(evidence) (string, bool){apiUnreachable, certificateMismatch, etcdWithoutQuorum, imageNotPullable, crashLooping} {
		if cause, ok := c(ev); ok {
			return cause
		}
	}
	var missing *missingError
	if errors.As(ev.runErr, &missing) && len(missing.missing) > 0 {
		// A Node that is not there or not Ready explains every pod missing on it.
		var nodes []string
		for _, m := range missing.missing {
			if strings.HasPrefix(m, "Node ") {
				nodes = append(nodes, m)
			}
		}
		if len(nodes) > 0 {
			return strings.Join(nodes, "; ")
		}
		return strings.Join(missing.missing, "; ")
	}
	if ev.detail != "" {
		return ev.detail
	}
	if ev.runErr != nil {
		return ev.runErr.Error()
	}
	return "unknown"
}

// flattened is the text of the run's error where it may quote a network error only as text: the
// wait for the API reports the API's last answer in words. Later stages' errors quote pods'
// messages, whose network errors are about registries, not the API.
func (ev evidence) flattened() string {
	if ev.stage == StageWaitAPI && ev.runErr != nil {
		return ev.runErr.Error()
	}
	return ""
}

var (
	dialFailure = regexp.MustCompile(`dial tcp (\S+): (?:connect: )?(connection refused|no route to host|network is unreachable|i/o timeout)`)
	dnsFailure  = regexp.MustCompile(`lookup (\S+?)(?: on \S+)?: (no such host|server misbehaving|[^;"\n]*timeout)`)
	hostMisfit  = regexp.MustCompile(`x509: certificate is valid for (.+?), not ([^\s";,)]+)`)
)

func apiUnreachable(ev evidence) (string, bool) {
	addr, why, ok := unreachable(ev.probeErr)
	var ue *url.Error
	if !ok && !ev.answered && errors.As(ev.probeErr, &ue) && (ue.Timeout() || errors.Is(ue.Err, context.DeadlineExceeded)) {
		addr, why, ok = hostOf(ue.URL), "no answer within "+probeTimeout.String(), true
	}
	if !ok {
		// A dial error that ended a stage is one the stage retried until its deadline.
		addr, why, ok = unreachable(ev.runErr)
	}
	if !ok {
		text := ev.flattened()
		if m := dialFailure.FindStringSubmatch(text); m != nil {
			addr, why, ok = m[1], m[2], true
		} else if m := dnsFailure.FindStringSubmatch(text); m != nil {
			addr, why, ok = m[1], "the name does not resolve: "+m[2], true
		}
	}
	if !ok {
		return "", false
	}
	if addr == "" {
		addr = hostOf(ev.api)
	}
	return fmt.Sprintf("the API endpoint %s cannot be reached from here (%s: %s); the controllers' kube-apiserver, or the load balancer in front of them, must be running and reachable from this machine at %s",
		ev.api, addr, why, addr), true
}

// unreachable says whether err shows that the API's address could not be connected to, which
// address and why. A request that timed out is not such proof: the stage's deadline may have ended it.
func unreachable(err error) (addr, why string, ok bool) {
	if err == nil {
		return "", "", false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Name, "the name does not resolve: " + dns.Err, true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		if op.Addr != nil {
			addr = op.Addr.String()
		}
		switch {
		case errors.Is(op.Err, syscall.ECONNREFUSED):
			why = "connection refused: nothing listens there"
		case errors.Is(op.Err, syscall.EHOSTUNREACH):
			why = "no route to host"
		case errors.Is(op.Err, syscall.ENETUNREACH):
			why = "network is unreachable"
		case op.Timeout():
			why = "i/o timeout: the connection was not accepted in time (a firewall, or the wrong address?)"
		default:
			why = op.Err.Error()
		}
		return addr, why, true
	}
	return "", "", false
}

func certificateMismatch(ev evidence) (string, bool) {
	used := hostOf(ev.api)
	for _, err := range []error{ev.probeErr, ev.runErr} {
		if err == nil {
			continue
		}
		var he x509.HostnameError
		if errors.As(err, &he) && he.Certificate != nil {
			return fmt.Sprintf("the API's serving certificate is not valid for %q, the address this machine uses; it is valid for %s: reach the API through one of those, or add %q to pki.extra_sans and render again",
				he.Host, quoteAll(certificateNames(he.Certificate)), he.Host), true
		}
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			names := "names this machine cannot see"
			if ua.Cert != nil {
				names = fmt.Sprintf("%s, issued by %q", quoteAll(certificateNames(ua.Cert)), ua.Cert.Issuer.String())
			}
			return fmt.Sprintf("the certificate served at %s (valid for %s) is signed by an authority the kubeconfig does not trust: check that %s is this cluster's API, and that the kubeconfig's certificate-authority-data is this cluster's CA (%s)",
				used, names, used, filepath.Join(generator.OutPKIDir, generator.CACert)), true
		}
	}
	text := ev.flattened()
	if m := hostMisfit.FindStringSubmatch(text); m != nil {
		return fmt.Sprintf("the API's serving certificate is not valid for %q, the address this machine uses; it is valid for %s: reach the API through one of those, or add %q to pki.extra_sans and render again",
			m[2], m[1], m[2]), true
	}
	if strings.Contains(text, "x509: certificate signed by unknown authority") {
		return fmt.Sprintf("the certificate served at %s is signed by an authority the kubeconfig does not trust: check that %s is this cluster's API, and that the kubeconfig's certificate-authority-data is this cluster's CA (%s)",
			used, used, filepath.Join(generator.OutPKIDir, generator.CACert)), true
	}
	return "", false
}

func certificateNames(c *x509.Certificate) []string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

// readyzEtcd finds /readyz's failing etcd checks, in its verbose answer or as the wait for the API
// quoted them.
var readyzEtcd = regexp.MustCompile(`(?:\[-\]|failing checks: |; )(etcd[\w-]* failed[^;\n]*)`)

func etcdWithoutQuorum(ev evidence) (string, bool) {
	var failing []string
	for _, text := range []string{ev.readyz, ev.flattened()} {
		for _, m := range readyzEtcd.FindAllStringSubmatch(text, -1) {
			failing = append(failing, strings.TrimSpace(m[1]))
		}
	}
	members := len(ev.etcd.members)
	checked := ev.etcd.skipped == "" && members > 0
	// A member that answers proves etcd is reachable from here; only then do members that do not
	// answer, or know no leader, say something about etcd rather than about this machine's network.
	noQuorum := checked && ev.etcd.reachable() > 0 && !ev.etcd.quorum()
	switch {
	case len(failing) > 0 && checked && ev.etcd.quorum():
		return fmt.Sprintf("the apiserver reports its etcd check failing (%s), although %d of %d etcd members answer here and agree on a leader: the apiserver cannot reach etcd or is refused by it; check its --etcd-servers and etcd client certificate, and its log in the diagnosis",
			strings.Join(dedupe(failing), "; "), ev.etcd.withLeader(), members), true
	case len(failing) > 0 || noQuorum:
		var says []string
		if len(failing) > 0 {
			says = append(says, "the apiserver's /readyz reports "+strings.Join(dedupe(failing), "; "))
		}
		if checked {
			says = append(says, fmt.Sprintf("%d of %d etcd members answer from here with a leader (%s)", ev.etcd.withLeader(), members, ev.etcd.brief()))
		}
		return fmt.Sprintf("etcd has no quorum: %s; the API cannot read or write until a majority of the controllers' etcd members run and reach each other on port %d",
			strings.Join(says, ", and "), generator.EtcdPeerPort), true
	}
	return "", false
}

// brief says in one line how each member answered.
func (e etcdReport) brief() string {
	var out []string
	for _, m := range e.members {
		s := m.node
		switch {
		case m.err != "":
			s += ": " + m.err
		case m.leader == 0:
			s += ": answers but knows no leader"
		case m.leader == m.id:
			s += ": leader"
		default:
			s += ": follower"
		}
		if len(m.errors) > 0 {
			s += " (" + strings.Join(m.errors, "; ") + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true}

func imageNotPullable(ev evidence) (string, bool) {
	for _, p := range relevantPods(ev.pods, ev.runErr) {
		for _, cs := range podContainerStatuses(&p) {
			w := cs.State.Waiting
			if w == nil || !imagePullReasons[w.Reason] {
				continue
			}
			image := cs.Image
			if image == "" {
				image = specImage(&p, cs.Name)
			}
			s := fmt.Sprintf("pod kube-system/%s on %s cannot pull image %q for its container %s (%s", p.Name, nodeOf(&p), image, cs.Name, w.Reason)
			if w.Message != "" {
				s += ": " + firstLine(w.Message)
			}
			return s + fmt.Sprintf("); check the image's name and tag, and that %s reaches its registry", nodeOf(&p)), true
		}
	}
	return "", false
}

func crashLooping(ev evidence) (string, bool) {
	for _, p := range relevantPods(ev.pods, ev.runErr) {
		for _, cs := range podContainerStatuses(&p) {
			if cs.Ready {
				continue
			}
			last := cs.LastTerminationState.Terminated
			if last == nil {
				last = cs.State.Terminated
			}
			crashing := cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
			if !crashing && (last == nil || (cs.RestartCount == 0 && last.ExitCode == 0)) {
				continue
			}
			s := fmt.Sprintf("container %s of pod kube-system/%s on %s keeps crashing: %d restarts", cs.Name, p.Name, nodeOf(&p), cs.RestartCount)
			if last != nil {
				s += fmt.Sprintf(", last exit code %d", last.ExitCode)
				if last.Reason != "" {
					s += " (" + last.Reason + ")"
				}
			}
			if lines := lastLines(ev.logOf(p.Name, cs.Name), causeLogLines); len(lines) > 0 {
				s += "; its last log lines:\n" + strings.Join(lines, "\n")
			}
			return s, true
		}
	}
	return "", false
}

// logOf is the log that shows why a container ended: its previous instance's when it restarted.
func (ev evidence) logOf(pod, container string) string {
	var current string
	for _, l := range ev.logs {
		if l.pod != pod || l.container != container || l.err != nil {
			continue
		}
		if l.previous && strings.TrimSpace(l.text) != "" {
			return l.text
		}
		if !l.previous {
			current = l.text
		}
	}
	return current
}

func podContainerStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
}

func podContainers(p *corev1.Pod) []corev1.Container {
	return append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...)
}

func specImage(p *corev1.Pod, container string) string {
	for _, c := range podContainers(p) {
		if c.Name == container {
			return c.Image
		}
	}
	return ""
}

func nodeOf(p *corev1.Pod) string {
	if p.Spec.NodeName == "" {
		return "no node"
	}
	return p.Spec.NodeName
}

func lastLines(text string, n int) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// hostOf is the host:port of a URL, or the text itself when it is none.
func hostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	return s
}

func quoteAll(names []string) string {
	if len(names) == 0 {
		return "no name"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func indent(s, prefix string) string { return strings.ReplaceAll(s, "\n", "\n"+prefix) }

// bundleFiles lays the evidence out as the bundle's files, by path.
func bundleFiles(ev evidence, cause string, rec *Record, p plan, now time.Time) map[string][]byte {
	files := map[string][]byte{}
	unavailable := map[string]error{}
	put := func(name string, data []byte, err error) {
		if err != nil {
			unavailable[name] = err
			data = []byte(fmt.Sprintf("%s could not be gathered: %v\n", name, err))
		}
		files[name] = data
	}

	put("pods.txt", podsText(ev.pods), ev.podsErr)
	podsJSON, err := json.MarshalIndent(ev.pods, "", "  ")
	if ev.podsErr != nil {
		err = ev.podsErr
	}
	put("pods.json", podsJSON, err)
	put("events.txt", eventsText(ev.events), ev.eventsErr)
	put("nodes.txt", nodesText(ev.nodes), ev.nodesErr)
	for _, l := range ev.logs {
		text := l.text
		if text == "" && l.err == nil {
			text = "(empty: the container has not run yet, or wrote nothing)\n"
		}
		put(l.file(), []byte(text), l.err)
	}
	files["etcd.txt"] = etcdText(ev.etcd)
	stages, err := json.MarshalIndent(rec, "", "  ")
	put("stages.json", append(stages, '\n'), err)

	var b strings.Builder
	fmt.Fprintf(&b, "liftoff bootstrap failed; diagnosed at %s\n\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "error:\n    %s\n\n", indent(errText(ev.runErr), "    "))
	fmt.Fprintf(&b, "likely cause:\n    %s\n\n", indent(cause, "    "))
	fmt.Fprintf(&b, "cluster: %s, controllers %s\n", p.mode, strings.Join(p.controllers, ", "))
	switch {
	case ev.probeErr == nil:
		fmt.Fprintf(&b, "API %s: /readyz answers ok\n", ev.api)
	case ev.answered:
		fmt.Fprintf(&b, "API %s: answers, but /readyz is not ok: %v\n", ev.api, ev.probeErr)
	default:
		fmt.Fprintf(&b, "API %s: does not answer: %v\n", ev.api, ev.probeErr)
	}
	if rec != nil {
		fmt.Fprintf(&b, "\nstages (status %s):\n", rec.Status)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, s := range rec.Stages {
			took := "-"
			if s.End != nil {
				took = s.End.Sub(s.Start).Round(100 * time.Millisecond).String()
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", s.Stage, s.Result, s.Start.UTC().Format(time.RFC3339), took)
		}
		tw.Flush()
		for _, s := range rec.Stages {
			if s.Detail != "" {
				fmt.Fprintf(&b, "\n%s %s:\n    %s\n", s.Stage, s.Result, indent(s.Detail, "    "))
			}
		}
	}
	if len(unavailable) > 0 {
		names := make([]string, 0, len(unavailable))
		for n := range unavailable {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("\nnot gathered:\n")
		for _, n := range names {
			fmt.Fprintf(&b, "    %s: %v\n", n, unavailable[n])
		}
	}
	files["summary.txt"] = []byte(b.String())
	return files
}

func errText(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

func podsText(pods []corev1.Pod) []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODE\tPHASE\tREADY\tRESTARTS")
	var notReady []string
	for i := range pods {
		p := &pods[i]
		ready, restarts := 0, int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\n", p.Name, nodeOf(p), p.Status.Phase, ready, len(p.Spec.Containers), restarts)
		if _, ok := podReadySince(p); !ok {
			notReady = append(notReady, describePod(p))
		}
	}
	tw.Flush()
	if len(pods) == 0 {
		b.WriteString("(kube-system has no pods)\n")
	}
	if len(notReady) > 0 {
		b.WriteString("\nnot Ready:\n")
		for _, s := range notReady {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	return b.Bytes()
}

func eventsText(events []corev1.Event) []byte {
	var b bytes.Buffer
	for _, e := range events {
		obj := e.InvolvedObject.Kind + " " + e.InvolvedObject.Name
		msg := strings.Join(strings.Fields(e.Message), " ")
		fmt.Fprintf(&b, "%s %s %s %s: %s", eventTime(e).UTC().Format(time.RFC3339), e.Type, e.Reason, obj, msg)
		if e.Count > 1 {
			fmt.Fprintf(&b, " (x%d)", e.Count)
		}
		b.WriteByte('\n')
	}
	if len(events) == 0 {
		b.WriteString("(kube-system has no events)\n")
	}
	return b.Bytes()
}

func nodesText(nodes []corev1.Node) []byte {
	var b bytes.Buffer
	for i := range nodes {
		n := &nodes[i]
		fmt.Fprintf(&b, "%s\n", n.Name)
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(&b, "    %s=%s since %s: %s %s\n", c.Type, c.Status, c.LastTransitionTime.UTC().Format(time.RFC3339), c.Reason, c.Message)
		}
		if len(n.Status.Conditions) == 0 {
			b.WriteString("    no conditions reported yet\n")
		}
	}
	if len(nodes) == 0 {
		b.WriteString("(no Node has registered)\n")
	}
	return b.Bytes()
}

func etcdText(e etcdReport) []byte {
	var b bytes.Buffer
	if e.skipped != "" {
		fmt.Fprintln(&b, e.skipped)
	}
	if len(e.members) == 0 {
		return b.Bytes()
	}
	fmt.Fprintf(&b, "etcd members, asked directly from here with %s:\n", filepath.Join(generator.OutPKIDir, generator.APIServerEtcdCert))
	for _, m := range e.members {
		endpoint := m.endpoint
		if endpoint == "" {
			endpoint = "(address unknown)"
		}
		fmt.Fprintf(&b, "\n%s %s\n", m.node, endpoint)
		if !m.reachable {
			reason := m.err
			if reason == "" {
				reason = "not asked"
			}
			fmt.Fprintf(&b, "    reachable: no: %s\n", reason)
			continue
		}
		role := "follower"
		switch {
		case m.leader == 0:
			role = "none known"
		case m.leader == m.id:
			role = "this member"
		}
		fmt.Fprintf(&b, "    reachable: yes\n    member id: %x\n    leader: %s\n    raft term: %d\n    db size: %d bytes\n    version: %s\n",
			m.id, role, m.raftTerm, m.dbSize, m.version)
		if len(m.errors) > 0 {
			fmt.Fprintf(&b, "    errors: %s\n", strings.Join(m.errors, "; "))
		}
	}
	quorum := "no"
	if e.quorum() {
		quorum = "yes"
	}
	fmt.Fprintf(&b, "\nquorum: %s: %d of %d members answer and know a leader\n", quorum, e.withLeader(), len(e.members))
	return b.Bytes()
}

// redactor removes secrets from everything a bundle holds, which its user may share: private keys,
// bootstrap tokens, and the credentials this run used.
type redactor struct{ secrets []string }

var (
	privateKeyBlock = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`)
	bootstrapToken  = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`)
	bearerToken     = regexp.MustCompile(`(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+`)
)

func (r *run) redactor(dir string) redactor {
	var red redactor
	if r.config != nil {
		red.secrets = append(red.secrets, r.config.BearerToken, r.config.Password)
	}
	tokens, _ := generator.ReadBootstrapTokens(os.DirFS(dir))
	for _, t := range tokens {
		red.secrets = append(red.secrets, t.String(), t.Secret)
	}
	return red
}

func (red redactor) apply(data []byte) []byte {
	data = privateKeyBlock.ReplaceAll(data, []byte("[private key removed]"))
	data = bootstrapToken.ReplaceAll(data, []byte("[token removed]"))
	data = bearerToken.ReplaceAll(data, []byte("${1}[token removed]"))
	for _, s := range red.secrets {
		// Secrets too short to be told from ordinary words are not worth the damage.
		if len(s) >= 6 {
			data = bytes.ReplaceAll(data, []byte(s), []byte("[secret removed]"))
		}
	}
	return data
}

// writeBundle writes files, redacted, into a new directory under root named by the UTC time. The
// directory appears whole or not at all: it is written beside its final name and renamed.
func writeBundle(root string, now time.Time, files map[string][]byte, red redactor) (dir string, err error) {
	if root, err = filepath.Abs(root); err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// The bundle holds logs and cluster state: for its owner only, as the output directory's keys are.
	tmp, err := os.MkdirTemp(root, ".new-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for name, data := range files {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, red.apply(data), 0o600); err != nil {
			return "", err
		}
	}
	stamp := now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		dir = filepath.Join(root, stamp)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		err = os.Rename(tmp, dir)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || i >= 100 {
			return "", err
		}
	}
}
