package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"sort"
	"strings"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Mode names a cluster's control-plane mode in records and reports.
type Mode string

// Control-plane modes.
const (
	ModeStatic     Mode = "static"
	ModeSelfHosted Mode = "self-hosted"
)

// plan is what a run learns from the rendered assets: the mode, which controllers must run the
// control plane, which bootstrap pods must go, and a digest of the manifests, by which a re-run
// recognises a cluster already bootstrapped with them.
type plan struct {
	mode Mode
	// controllers are the controller machines' node names, in render order.
	controllers []string
	// bootstrapNode runs the bootstrap control plane, whose static pods are bootstrapPods
	// (pod names, without the node suffix of their mirror pods).
	bootstrapNode string
	bootstrapPods []string
	// bootstrapMachine is the separate bootstrap machine, whose temporary etcd member the
	// controllers' take over from; "" when the first controller runs the bootstrap control plane.
	bootstrapMachine string
	manifests        string
}

func newPlan(assets *generator.Assets) plan {
	p := plan{mode: ModeStatic}
	h := sha256.New()
	for _, a := range assets.Files {
		switch {
		case a.Kind == generator.KindIgnition && a.Role == spec.RoleController:
			p.controllers = append(p.controllers, a.Node)
		case a.Kind == generator.KindIgnition && a.Role == spec.RoleBootstrap:
			p.bootstrapMachine = a.Node
		case path.Dir(a.Path) == generator.OutBootstrapDir && a.Kind == generator.KindStaticPod:
			p.mode = ModeSelfHosted
			p.bootstrapNode = a.Node
			p.bootstrapPods = append(p.bootstrapPods, strings.TrimSuffix(path.Base(a.Path), path.Ext(a.Path)))
		case path.Dir(a.Path) == generator.OutManifestDir:
			h.Write([]byte(a.Path))
			h.Write([]byte{0})
			h.Write(a.Data)
			h.Write([]byte{0})
		}
	}
	sort.Strings(p.bootstrapPods)
	p.manifests = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return p
}

// stages are the stages this cluster's pivot runs.
func (p plan) stages() []Stage {
	var out []Stage
	for _, st := range Stages() {
		if st == StageTeardown && p.mode != ModeSelfHosted || st == StageEtcd && p.bootstrapMachine == "" {
			continue
		}
		out = append(out, st)
	}
	return out
}

// mirrorPod is the name of the mirror pod of static pod name on node.
func mirrorPod(name, node string) string { return name + "-" + node }
