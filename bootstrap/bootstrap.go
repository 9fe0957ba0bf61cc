package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// DefaultTimeout bounds a whole run when Options.Timeout is zero. A control plane booting from
// nothing on slow machines (images pulled, etcd electing) fits in it with room to spare.
const DefaultTimeout = 20 * time.Minute

// DefaultStageTimeouts bound each stage, so that a stage that cannot finish says so long before
// the whole run's deadline, naming itself and what it misses. Options.StageTimeouts overrides them.
var DefaultStageTimeouts = map[Stage]time.Duration{
	StageWaitAPI:      15 * time.Minute,
	StageNamespaces:   2 * time.Minute,
	StageCRDs:         2 * time.Minute,
	StageManifests:    5 * time.Minute,
	StageControlPlane: 10 * time.Minute,
	StageTeardown:     3 * time.Minute,
	StageEtcd:         3 * time.Minute,
	StageVerify:       2 * time.Minute,
}

// Options configure a Run.
type Options struct {
	// Dir is the rendered output directory.
	Dir string
	// Kubeconfig reaches the API with cluster-admin rights; DIR/auth/admin.conf when empty.
	// Config, when set, is used instead.
	Kubeconfig string
	Config     *rest.Config
	// Timeout bounds the whole run; DefaultTimeout when zero.
	Timeout time.Duration
	// StageTimeouts bound single stages; DefaultStageTimeouts for the others.
	StageTimeouts map[Stage]time.Duration
	// From skips the stages before it, to resume a run that failed in a later stage. Every stage
	// can be run again, so a run without From also converges after an interruption.
	From Stage
	// Progress receives every event; nil discards them.
	Progress Progress
	// DiagnosisDir is where a failed run writes its diagnosis; DiagnosisDir(Dir) when empty.
	DiagnosisDir string
	// SecretsListen is where to serve the machines their secrets, when they fetch them
	// (machine_secrets.server): that address when empty.
	SecretsListen string
}

// Report is what a run did and measured.
type Report struct {
	Mode Mode
	// AlreadyBootstrapped says the cluster's record showed it bootstrapped with these manifests,
	// so nothing was done.
	AlreadyBootstrapped bool
	Start, End          time.Time
	Stages              []StageRecord
	// Handover is what a client calling the API through the endpoint saw from the moment the
	// control plane was applied until the end.
	Handover HandoverStats
	// ControlPlaneReady is when the last required control-plane pod or controller Node became
	// Ready, as the API reports it: no pivot can end before it.
	ControlPlaneReady time.Time
}

// AdminKubeconfig is the kubeconfig bootstrap uses by default, relative to the output directory.
var AdminKubeconfig = filepath.Join(generator.OutAuthDir, "admin.conf")

// run is one Run's state.
type run struct {
	// emitMu keeps events in order: the API's warnings and the secrets server report from
	// goroutines of their own.
	emitMu   sync.Mutex
	start    time.Time
	progress Progress
	config   *rest.Config
	client   kubernetes.Interface
	dynamic  dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	objects  []Object
	plan     plan
	report   *Report
	record   *Record
	// cluster watches the cluster once the API answers.
	cluster *cluster
	probe   *handoverProbe
	// goneAt is when the bootstrap control plane was seen gone.
	goneAt time.Time
	// life is the whole run's context, which the watches last for.
	life context.Context
	from Stage
	// dir is the output directory; a failed run's diagnosis goes under diagnosisDir.
	dir, diagnosisDir string
	// recovery, when `liftoff recover` rebuilt the bootstrap control plane, is what it wrote.
	recovery   *Recovery
	leaseReads map[string]leaseRead
	// superAdmin is the break-glass kubeconfig ensureAdmins may use; empty when the run was given
	// a client configuration.
	superAdmin string
}

// Run bootstraps the cluster rendered into opts.Dir. It waits for the API, applies the namespaces,
// the CRDs (waiting until each is served) and every other manifest, and waits until the control
// plane is Ready on every controller. For a self-hosted cluster this is the pivot: the manifests
// hold the permanent control plane, created through the bootstrap one, which is then removed and
// the result verified. Each stage is recorded in the ConfigMap kube-system/liftoff-bootstrap. A
// run against a cluster already bootstrapped with the same manifests does nothing and says so;
// any other run converges from wherever an earlier one stopped.
func Run(ctx context.Context, opts Options) (*Report, error) {
	r := &run{start: time.Now(), progress: opts.Progress, from: opts.From, dir: opts.Dir, diagnosisDir: opts.DiagnosisDir}
	if r.progress == nil {
		r.progress = func(Event) {}
	}
	assets, err := outdir.Read(opts.Dir)
	if err != nil {
		return nil, err
	}
	if r.objects, err = Manifests(assets); err != nil {
		return nil, err
	}
	r.plan = newPlan(assets)
	rec, err := ReadRecovery(opts.Dir)
	if err != nil {
		return nil, err
	}
	if rec != nil && r.plan.mode == ModeSelfHosted {
		r.recovery = rec
		r.plan.recover(rec)
	}
	// Machines that fetch their secrets get them while the run lasts: the control plane cannot
	// start without them.
	secrets, err := ServeSecrets(opts.Dir, opts.SecretsListen, r.emit)
	if err != nil {
		return nil, err
	}
	if secrets != nil {
		defer func() {
			if waiting := r.notJoined(secrets.Waiting()); len(waiting) > 0 {
				r.emit(Event{Stage: StageSecrets, Result: ResultWarning, Detail: fmt.Sprintf(
					"%s did not fetch their secrets while bootstrap ran; run `liftoff serve-secrets --dir %s` while they boot", strings.Join(waiting, ", "), opts.Dir)})
			}
			secrets.Close()
		}()
	}
	r.report = &Report{Mode: r.plan.mode, Start: r.start}
	r.record = &Record{Mode: r.plan.mode, Status: StatusInProgress, Manifests: r.plan.manifests}
	if err := r.connect(opts); err != nil {
		return nil, err
	}
	stages := r.plan.stages()
	if opts.From != "" {
		if _, err := ParseStage(string(opts.From)); err != nil {
			return nil, err
		}
		if !slices.Contains(stages, opts.From) {
			return nil, fmt.Errorf("this cluster's bootstrap has no %s stage; its stages are %v", opts.From, stages)
		}
		for stages[0] != opts.From {
			r.emit(Event{Stage: stages[0], Result: ResultSkipped, Detail: "resuming from " + string(opts.From)})
			stages = stages[1:]
		}
		// Resuming needs the API and the watches that waiting for it would have set up.
		if stages[0] != StageWaitAPI {
			stages = append([]Stage{StageWaitAPI}, stages...)
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("bootstrap did not finish within %s", timeout))
	defer cancel()
	r.life = ctx
	defer func() {
		if r.probe != nil {
			r.probe.stop()
		}
	}()
	for _, st := range stages {
		if st != StageWaitAPI && r.probe == nil {
			// From here on (in a resumed run too) the control plane may change under the
			// endpoint: measure what a client sees.
			if r.probe, err = startHandoverProbe(ctx, r.config); err != nil {
				return r.report, err
			}
		}
		if err := r.runStage(ctx, st, opts.StageTimeouts); err != nil {
			return r.finish(err)
		}
		if r.report.AlreadyBootstrapped {
			return r.finish(nil)
		}
	}
	return r.finish(nil)
}

// runStage runs one stage on its own deadline and records it.
func (r *run) runStage(ctx context.Context, st Stage, timeouts map[Stage]time.Duration) error {
	d, ok := timeouts[st]
	if !ok {
		d = DefaultStageTimeouts[st]
	}
	sctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("stage %s did not finish within %s", st, d))
	defer cancel()
	rec := r.record.stage(st)
	*rec = StageRecord{Stage: st, Start: time.Now(), Result: ResultStarted}
	r.saveRecordQuietly(ctx)
	r.emit(Event{Stage: st, Result: ResultStarted})
	err := r.stage(sctx, st)
	end := time.Now()
	rec = r.record.stage(st)
	rec.End = &end
	if err != nil {
		if cause := context.Cause(sctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		rec.Result, rec.Detail = ResultFailed, err.Error()
		r.emit(Event{Stage: st, Result: ResultFailed, Detail: err.Error()})
		if st == StageTeardown || st == StageEtcd || st == StageVerify {
			return fmt.Errorf("bootstrap stage %s: %w (resume with --from %s)", st, err, st)
		}
		return fmt.Errorf("bootstrap stage %s: %w (nothing was torn down; resume with --from %s)", st, err, st)
	}
	rec.Result = ResultDone
	if r.report.AlreadyBootstrapped {
		return nil
	}
	r.saveRecordQuietly(ctx)
	r.emit(Event{Stage: st, Result: ResultDone})
	return nil
}

// resume reads the cluster's record once the API answers: a cluster bootstrapped with these
// manifests needs nothing more; otherwise the run goes on, keeping the record's pending teardown
// request so the agents' answers to it still count.
func (r *run) resume(ctx context.Context) error {
	prev, err := ReadRecord(ctx, r.client)
	if err != nil {
		return fmt.Errorf("reading the bootstrap record: %w", err)
	}
	if prev == nil {
		return nil
	}
	r.record.Teardown, r.record.TeardownSuccessor = prev.Teardown, prev.TeardownSuccessor
	// A recovery after the last completed run means the pivot must run again.
	recovered := r.recovery != nil && (prev.Completed == nil || r.recovery.Since.After(*prev.Completed))
	if !recovered {
		r.recovery = nil
	}
	if prev.Status == StatusComplete && prev.Manifests == r.plan.manifests && r.from == "" && !recovered {
		r.report.AlreadyBootstrapped = true
		*r.record = *prev
		r.emit(Event{Stage: "bootstrap", Result: ResultSkipped, Detail: fmt.Sprintf(
			"the cluster was bootstrapped at %s with these manifests (kube-system/%s); nothing to do",
			prev.Completed.Format(time.RFC3339), generator.PivotRecord)})
	}
	return nil
}

// finish ends a run: records the result and what the hand-over probe saw.
func (r *run) finish(err error) (*Report, error) {
	if r.probe != nil {
		r.report.Handover = r.probe.stop()
		r.probe = nil
		h := r.report.Handover
		r.record.Handover = &h
		r.emit(Event{Stage: "handover", Object: h.Endpoint, Result: ResultMeasured, Detail: h.String()})
	}
	r.report.End = time.Now()
	if !r.report.AlreadyBootstrapped && r.cluster != nil {
		if err != nil {
			r.record.Status = StatusFailed
		} else {
			r.record.Status = StatusComplete
			r.record.Completed = &r.report.End
		}
		// The run's own deadline may be over; the record is still worth a few seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		werr := r.saveRecord(ctx)
		cancel()
		if werr != nil && err == nil {
			err = fmt.Errorf("the cluster is bootstrapped, but its record was not written: %w", werr)
		}
	}
	// A run the caller interrupted did not fail; one that ran out of time or met an error did.
	if err != nil && !errors.Is(r.life.Err(), context.Canceled) {
		bundle, cause := r.diagnose(context.Background(), r.dir, err)
		err = diagnosed(err, bundle, cause)
	}
	r.report.Stages = append([]StageRecord(nil), r.record.Stages...)
	return r.report, err
}

// saveRecord writes the record once the API answers, retrying transient errors.
func (r *run) saveRecord(ctx context.Context) error {
	if r.cluster == nil {
		return nil
	}
	backoff := applyBackoff
	for {
		err := writeRecord(ctx, r.client, r.record)
		if err == nil || permanent(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff.Step()):
		}
	}
}

// saveRecordQuietly writes the record where a failure to do so must not stop the run: it is
// reported, and the next write carries everything again.
func (r *run) saveRecordQuietly(ctx context.Context) {
	if r.cluster == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := writeRecord(wctx, r.client, r.record); err != nil {
		r.emit(Event{Stage: "record", Result: ResultWarning, Detail: "the bootstrap record was not written: " + err.Error()})
	}
}

func (r *run) connect(opts Options) error {
	cfg := opts.Config
	if cfg == nil {
		path := opts.Kubeconfig
		if path == "" {
			path = filepath.Join(opts.Dir, AdminKubeconfig)
		}
		r.superAdmin = filepath.Join(opts.Dir, SuperAdminKubeconfig)
		var err error
		if cfg, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
			return fmt.Errorf("reading kubeconfig %s: %w", path, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "liftoff-bootstrap"
	cfg.QPS, cfg.Burst = 50, 100
	if cfg.Timeout == 0 {
		// One request never waits long: an API that hangs is retried rather than waited on.
		cfg.Timeout = 30 * time.Second
	}
	cfg.WarningHandler = warningHandler{r}
	r.config = cfg
	var err error
	if r.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if r.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	r.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(r.client.Discovery()))
	return nil
}

func (r *run) stage(ctx context.Context, st Stage) error {
	// An interrupted run stops at the stage it is in, even one with nothing to do.
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	switch st {
	case StageWaitAPI:
		if err := r.waitForAPI(ctx); err != nil {
			return err
		}
		if r.cluster == nil {
			c, err := watchCluster(ctx, r.life, r.client)
			if err != nil {
				return err
			}
			r.cluster = c
		}
		return r.resume(ctx)
	case StageNamespaces:
		return r.applyAll(ctx, st, Object.isNamespace)
	case StageCRDs:
		if err := r.applyAll(ctx, st, Object.isCRD); err != nil {
			return err
		}
		if err := r.waitForCRDs(ctx); err != nil {
			return err
		}
		// Kinds the new CRDs define are looked up afresh.
		r.mapper.Reset()
		return nil
	case StageManifests:
		// Machines already registered are placed before the workloads placed on them are applied,
		// so that a cluster whose manifests change keeps its control plane where it runs.
		if err := r.placeNodes(ctx, st); err != nil {
			return err
		}
		if err := r.applyAll(ctx, st, func(o Object) bool { return !o.isNamespace() && !o.isCRD() }); err != nil {
			return err
		}
		return r.pruneTokens(ctx)
	case StageControlPlane:
		return r.waitForControlPlane(ctx)
	case StageTeardown:
		return r.teardown(ctx)
	case StageEtcd:
		return r.transitionEtcd(ctx)
	case StageVerify:
		return r.verify(ctx)
	}
	return fmt.Errorf("unknown stage %q", st)
}

func (r *run) applyAll(ctx context.Context, st Stage, match func(Object) bool) error {
	n := 0
	for _, o := range r.objects {
		if !match(o) {
			continue
		}
		n++
		if err := r.apply(ctx, st, o); err != nil {
			return err
		}
	}
	if n == 0 {
		r.emit(Event{Stage: st, Result: ResultSkipped, Detail: "no such objects in the manifests"})
	}
	return nil
}

func (r *run) emit(e Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	e.Time = time.Now()
	e.Elapsed = e.Time.Sub(r.start).Round(100 * time.Millisecond)
	r.progress(e)
}

// warningHandler reports the API's warnings (deprecated APIs, ignored fields) as events.
type warningHandler struct{ r *run }

func (w warningHandler) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.r.emit(Event{Stage: "api", Result: ResultWarning, Detail: text})
	}
}
