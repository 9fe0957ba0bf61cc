package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
	// From skips the stages before it, to resume a run that failed in a later stage.
	From Stage
	// Progress receives every event; nil discards them.
	Progress Progress
}

// AdminKubeconfig is the kubeconfig bootstrap uses by default, relative to the output directory.
var AdminKubeconfig = filepath.Join(generator.OutAuthDir, "admin.conf")

// run is one Run's state.
type run struct {
	start    time.Time
	progress Progress
	config   *rest.Config
	client   kubernetes.Interface
	dynamic  dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	objects  []Object
}

// Run bootstraps the cluster rendered into opts.Dir: it waits for the API, then applies the
// namespaces, the CRDs (waiting until each is served) and every other manifest. It can be run again
// at any time: objects already as rendered are left unchanged.
func Run(ctx context.Context, opts Options) error {
	r := &run{start: time.Now(), progress: opts.Progress}
	if r.progress == nil {
		r.progress = func(Event) {}
	}
	assets, err := outdir.Read(opts.Dir)
	if err != nil {
		return err
	}
	if r.objects, err = Manifests(assets); err != nil {
		return err
	}
	if err := r.connect(opts); err != nil {
		return err
	}
	stages := Stages()
	if opts.From != "" {
		if _, err := ParseStage(string(opts.From)); err != nil {
			return err
		}
		for stages[0] != opts.From {
			r.emit(Event{Stage: stages[0], Result: ResultSkipped, Detail: "resuming from " + string(opts.From)})
			stages = stages[1:]
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("bootstrap did not finish within %s", timeout))
	defer cancel()
	for _, st := range stages {
		r.emit(Event{Stage: st, Result: ResultStarted})
		if err := r.runStage(ctx, st); err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w: %w", cause, err)
			}
			r.emit(Event{Stage: st, Result: ResultFailed, Detail: err.Error()})
			return fmt.Errorf("bootstrap stage %s: %w (resume with --from %s)", st, err, st)
		}
		r.emit(Event{Stage: st, Result: ResultDone})
	}
	return nil
}

func (r *run) connect(opts Options) error {
	cfg := opts.Config
	if cfg == nil {
		path := opts.Kubeconfig
		if path == "" {
			path = filepath.Join(opts.Dir, AdminKubeconfig)
		}
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

func (r *run) runStage(ctx context.Context, st Stage) error {
	switch st {
	case StageWaitAPI:
		return r.waitForAPI(ctx)
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
		return r.applyAll(ctx, st, func(o Object) bool { return !o.isNamespace() && !o.isCRD() })
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
