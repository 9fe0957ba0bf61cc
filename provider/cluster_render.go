package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// previous is what state holds of the last apply.
type previous struct {
	// spec is the completed spec of the state's arguments; nil when they do not make a valid spec
	// (right after an import, which has no arguments).
	spec *spec.Cluster
	out  *rendered
	// renderer is rendererID of the provider that rendered out ("" when unknown).
	renderer string
}

// outcome is a cluster's outputs after a render.
type outcome struct {
	out *rendered
	// uncertain is set when the render issued key material, which the apply will issue afresh.
	uncertain bool
	// assets is every rendered file, when the whole cluster was rendered.
	assets  *generator.Assets
	changes []generator.Change
}

// renderCluster computes the outputs of the completed spec c, reusing prev's key material (prev is
// nil on create). Unless whole is set it renders only what changed when it can prove that is
// enough: see renderWorkers.
func renderCluster(c *spec.Cluster, prev *previous, now time.Time, whole bool) (*outcome, error) {
	if prev != nil && !whole {
		if o, err := renderWorkers(c, prev, now); o != nil || err != nil {
			return o, err
		}
	}
	var keys map[string]string
	if prev != nil {
		keys = prev.out.keys
	}
	res, err := generator.Render(c, generator.Options{Now: now, Existing: keyFS(keys)})
	if err != nil {
		return nil, err
	}
	out, err := renderedOf(res.Assets)
	if err != nil {
		return nil, err
	}
	return &outcome{out: out, uncertain: len(res.Changes) > 0, assets: res.Assets, changes: res.Changes}, nil
}

// renderWorkers renders only the workers whose settings changed and takes everything else from
// prev. It returns nil when that would not give what a whole render gives, which it can prove only
// when all of these hold:
//   - the same provider executable rendered prev (templates and code are the same);
//   - the spec is prev's except for the workers (cluster-wide inputs are the same);
//   - no certificate is inside the renewal window or not yet valid (no key material is re-issued);
//   - rendering the changed workers reproduces prev's cluster-wide and controller files exactly.
//
// A worker's Ignition config depends only on cluster-wide inputs and its own settings, which
// TestWorkerRenderIsIndependent checks against whole renders. A thousand-worker cluster re-renders
// in seconds, so this is what keeps its plans quick.
func renderWorkers(c *spec.Cluster, prev *previous, now time.Time) (*outcome, error) {
	if prev.spec == nil || prev.renderer == "" || prev.renderer != rendererID() || !sameBeyondWorkers(c, prev.spec) {
		return nil, nil
	}
	if due, err := timeSensitive(prev.out, now, c.PKI.RenewBefore); err != nil || due {
		return nil, err
	}
	before := map[string]spec.Node{}
	for _, n := range prev.spec.Workers {
		before[n.Name] = n
	}
	var changed []spec.Node
	redo := map[string]bool{}
	for _, n := range c.Workers {
		if b, ok := before[n.Name]; !ok || !reflect.DeepEqual(b, n) {
			changed = append(changed, n)
			redo[n.Name] = true
		}
		delete(before, n.Name)
	}
	for gone := range before {
		redo[gone] = true
	}
	out := prev.out.clone()
	out.dropWorkers(redo)
	if len(changed) == 0 {
		return &outcome{out: out}, nil
	}
	sub := *c
	sub.Workers = changed
	res, err := generator.Render(&sub, generator.Options{Now: now, Existing: keyFS(prev.out.keys)})
	if err != nil {
		return nil, err
	}
	if len(res.Changes) > 0 {
		return nil, nil
	}
	part, err := renderedOf(res.Assets)
	if err != nil {
		return nil, err
	}
	if !part.sameBeyondWorkers(prev.out) {
		return nil, nil
	}
	out.addWorkers(part, redo)
	return &outcome{out: out}, nil
}

// sameBeyondWorkers reports whether two completed specs are equal apart from their workers.
func sameBeyondWorkers(a, b *spec.Cluster) bool {
	strip := func(c *spec.Cluster) spec.Cluster {
		s := *c
		s.Workers, s.Filename, s.Ranges, s.Source = nil, "", nil, nil
		return s
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// timeSensitive reports whether rendering at now could re-issue a certificate for its dates alone.
func timeSensitive(r *rendered, now time.Time, window string) (bool, error) {
	renew, err := spec.ParseDuration(window)
	if err != nil {
		return false, err
	}
	certs, err := r.storedCertificates()
	if err != nil {
		return false, err
	}
	for _, c := range certs {
		if now.Before(c.NotBefore) || c.ExpiresWithin(now, renew) {
			return true, nil
		}
	}
	return false, nil
}

// rendererID identifies the code that renders: the SHA-256 of the running executable. The same
// executable renders the same spec and key material to the same bytes, so outputs it rendered
// before can be kept without rendering them again.
var rendererID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := os.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
})
