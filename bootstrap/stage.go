package bootstrap

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Stage is one named step of a bootstrap. Stages run in the order of Stages; each can be run again.
type Stage string

// The stages of a bootstrap, in order. A static cluster runs all but StageTeardown.
const (
	// StageWaitAPI waits until the API answers /readyz and its system namespaces exist: in a
	// self-hosted cluster, the bootstrap control plane's (step 1 of the pivot).
	StageWaitAPI Stage = "wait-for-api"
	// StageNamespaces applies every Namespace of the manifests, so later objects have a home.
	StageNamespaces Stage = "namespaces"
	// StageCRDs applies every CustomResourceDefinition and waits until the API serves each one.
	StageCRDs Stage = "crds"
	// StageManifests applies everything else, file by file in the index's lexical order: in a
	// self-hosted cluster, the permanent control plane too (step 2).
	StageManifests Stage = "manifests"
	// StageControlPlane waits, by watching, until every control-plane replica on every controller
	// is Ready and every controller Node is Ready.
	StageControlPlane Stage = "control-plane"
	// StageTeardown has the host agents remove the bootstrap control plane and waits until it is
	// gone (step 4). It runs only after every earlier stage succeeded.
	StageTeardown Stage = "teardown"
	// StageEtcd removes the bootstrap machine's temporary etcd member once the controllers'
	// members are healthy with quorum without it (step 3). Only a pivot from a bootstrap machine
	// has it.
	StageEtcd Stage = "etcd"
	// StageVerify proves the result through the final endpoint: the API answers and the leader
	// leases are held by live control-plane pods, not by the bootstrap ones.
	StageVerify Stage = "verify"
)

// Stages lists every stage in the order Run runs them.
func Stages() []Stage {
	return []Stage{StageWaitAPI, StageNamespaces, StageCRDs, StageManifests, StageControlPlane, StageTeardown, StageEtcd, StageVerify}
}

// ParseStage returns the stage named s.
func ParseStage(s string) (Stage, error) {
	var names []string
	for _, st := range Stages() {
		if string(st) == s {
			return st, nil
		}
		names = append(names, string(st))
	}
	return "", fmt.Errorf("unknown stage %q; stages are %s", s, strings.Join(names, ", "))
}

// Results an Event reports.
const (
	ResultStarted    = "started"
	ResultWaiting    = "waiting"
	ResultReady      = "ready"
	ResultCreated    = "created"
	ResultConfigured = "configured"
	ResultUnchanged  = "unchanged"
	ResultRetrying   = "retrying"
	ResultWarning    = "warning"
	ResultFailed     = "failed"
	ResultDone       = "done"
	ResultSkipped    = "skipped"
	ResultMeasured   = "measured"
	ResultReleased   = "released"
	ResultRemoved    = "removed"
)

// Event is one step of progress: which stage, which object (if any) and what happened to it.
type Event struct {
	Time    time.Time     `json:"time"`
	Elapsed time.Duration `json:"elapsed"`
	Stage   Stage         `json:"stage"`
	// Object is "Kind namespace/name" (or "Kind name"), File the manifest it came from.
	Object string `json:"object,omitempty"`
	File   string `json:"file,omitempty"`
	Result string `json:"result"`
	// Detail says more: what is awaited, why a retry happens, what failed.
	Detail string `json:"detail,omitempty"`
}

// Progress receives events as they happen.
type Progress func(Event)

// TextProgress writes one key=value line per event to w.
func TextProgress(w io.Writer) Progress {
	var mu sync.Mutex
	return func(e Event) {
		var b strings.Builder
		fmt.Fprintf(&b, "%7.1fs stage=%s", e.Elapsed.Seconds(), e.Stage)
		if e.File != "" {
			fmt.Fprintf(&b, " file=%s", e.File)
		}
		if e.Object != "" {
			fmt.Fprintf(&b, " object=%q", e.Object)
		}
		fmt.Fprintf(&b, " result=%s", e.Result)
		if e.Detail != "" {
			fmt.Fprintf(&b, " detail=%q", e.Detail)
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, b.String())
	}
}

// JSONProgress writes one JSON object per event to w.
func JSONProgress(w io.Writer) Progress {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(e)
	}
}
