package hostagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// The checkpointer keeps a self-hosted control plane able to start on a controller without an API.
//
// A pod that the API says runs on this node, is Ready and carries generator.CheckpointAnnotation is
// saved as a checkpoint: a static pod that needs nothing from the API (no service account, its
// secrets and config maps as host files, the addresses it read from the downward API filled in).
// A checkpoint is inactive, a file in the checkpoint directory, until its parent is not running on
// this host and the API cannot be reached; then it becomes active, a file in the kubelet's static
// pod directory, and the kubelet runs it. Once the parent runs here again, and the API says it is
// Ready, for a grace period, the active checkpoint is removed. A checkpoint whose parent has been
// gone from the API, while the API answered, for longer than the orphan period is removed with its
// files.
//
// Parents are told by their owner (a DaemonSet's pods share one checkpoint, whatever their names)
// and found on the host by their labels, so a parent replaced by its controller is recognised.
// The checkpointer runs as a static pod itself, with the kubelet's credentials: the Node
// authorizer lets it read only this node's pods and the secrets and config maps they use.

// CheckpointLabel marks a checkpoint's pod; its value is the parent's owner.
const CheckpointLabel = "checkpointer.liftoff.dev/checkpoint-of"

// parentLabelsAnnotation holds, on a checkpoint, the labels that identify its parent's pods.
const parentLabelsAnnotation = "checkpointer.liftoff.dev/parent-labels"

// checkpointFilePrefix begins every active checkpoint's file in the static pod directory.
const checkpointFilePrefix = "checkpoint-"

// volatileLabels change with every revision of a controller's pods; a parent is found without them.
var volatileLabels = []string{"controller-revision-hash", "pod-template-generation", "pod-template-hash"}

// LocalPod is a pod whose containers run on this host, as the container runtime reports it.
type LocalPod struct {
	Namespace, Name string
	Labels          map[string]string
}

// Runtime reports the pods running on this host.
type Runtime interface {
	RunningPods(ctx context.Context) ([]LocalPod, error)
}

// CheckpointOptions configure a checkpointer.
type CheckpointOptions struct {
	// Client reaches the API as this node.
	Client kubernetes.Interface
	Node   string
	// StaticPodDir is the kubelet's static pod directory; CheckpointDir holds the checkpoints.
	StaticPodDir, CheckpointDir string
	Runtime                     Runtime
	// Interval between checks (default 1 s); Grace, how long a parent runs Ready before its active
	// checkpoint is removed (default 30 s); Orphan, how long a parent may be gone from the API
	// before its checkpoint is removed (default 2 min).
	Interval, Grace, Orphan time.Duration
	Logf                    func(format string, args ...any)
}

// RunCheckpointer checkpoints and restores pods until ctx ends.
func RunCheckpointer(ctx context.Context, opts CheckpointOptions) error {
	if opts.Node == "" {
		return errors.New("checkpointer: the node name is not set")
	}
	for _, d := range []string{opts.StaticPodDir, opts.CheckpointDir} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("checkpointer: %s is not a directory: %v", d, err)
		}
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	if opts.Grace == 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Orphan == 0 {
		opts.Orphan = 2 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	c := NewCheckpointer(opts)
	opts.Logf("checkpointer on node %s: checkpoints in %s, active ones in %s", opts.Node, opts.CheckpointDir, opts.StaticPodDir)
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		c.Sync(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Checkpointer holds what one Sync needs to remember for the next.
type Checkpointer struct {
	CheckpointOptions
	// parentSince: since when each checkpoint's parent has run here and been Ready.
	parentSince map[string]time.Time
	// orphanSince: since when the API has not known each checkpoint's parent.
	orphanSince map[string]time.Time
	// unreachable counts the checks in a row that found the API unreachable.
	unreachable int
	// lastLog avoids repeating the same message every interval.
	lastLog map[string]string
}

// NewCheckpointer returns a checkpointer whose Sync a caller drives.
func NewCheckpointer(opts CheckpointOptions) *Checkpointer {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Checkpointer{CheckpointOptions: opts, parentSince: map[string]time.Time{}, orphanSince: map[string]time.Time{}, lastLog: map[string]string{}}
}

func (c *Checkpointer) logOnce(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.lastLog[key] == msg {
		return
	}
	c.lastLog[key] = msg
	c.Logf("%s", msg)
}

// Sync is one check: it saves checkpoints of this node's annotated pods while the API answers, and
// activates, deactivates and removes checkpoints as their parents come and go.
func (c *Checkpointer) Sync(ctx context.Context, now time.Time) {
	apiCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	pods, apiErr := c.Client.CoreV1().Pods(metav1.NamespaceAll).List(apiCtx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", c.Node).String(),
	})
	cancel()
	if apiErr != nil {
		c.unreachable++
		c.logOnce("api", "the API cannot be reached: %v", apiErr)
	} else {
		c.unreachable = 0
		c.logOnce("api", "the API answers")
	}
	// Parents by checkpoint key, as the API knows them.
	parents := map[string]*corev1.Pod{}
	if apiErr == nil {
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Annotations[generator.CheckpointAnnotation] != "true" || p.Labels[CheckpointLabel] != "" {
				continue
			}
			key := checkpointKey(p)
			// A parent being deleted still counts as known, so its checkpoint is kept while a
			// successor is made; only a Ready parent's pod is saved.
			if prev, ok := parents[key]; ok && podReady(prev) && prev.DeletionTimestamp == nil {
				continue
			}
			parents[key] = p
		}
		for key, p := range parents {
			if podReady(p) && p.DeletionTimestamp == nil {
				if err := c.save(ctx, key, p); err != nil {
					c.logOnce("save/"+key, "checkpoint %s of pod %s/%s not saved: %v", key, p.Namespace, p.Name, err)
				} else {
					c.logOnce("save/"+key, "checkpoint %s saved from pod %s/%s", key, p.Namespace, p.Name)
				}
			}
		}
	}
	local, rtErr := c.Runtime.RunningPods(ctx)
	if rtErr != nil {
		c.logOnce("runtime", "the container runtime cannot be asked: %v", rtErr)
	} else {
		c.logOnce("runtime", "the container runtime answers")
	}
	keys, err := c.checkpoints()
	if err != nil {
		c.logOnce("list", "reading checkpoints: %v", err)
		return
	}
	for _, key := range keys {
		cp, err := c.load(key)
		if err != nil {
			c.logOnce("load/"+key, "checkpoint %s unreadable: %v", key, err)
			continue
		}
		active := fileExists(c.activePath(key))
		running := rtErr == nil && parentRunning(cp, local)
		parent := parents[key]
		// The parent runs here and the API says it is Ready: the checkpoint is not needed.
		if running && apiErr == nil && parent != nil && podReady(parent) {
			if _, ok := c.parentSince[key]; !ok {
				c.parentSince[key] = now
			}
		} else {
			delete(c.parentSince, key)
		}
		if apiErr == nil && parent == nil {
			if _, ok := c.orphanSince[key]; !ok {
				c.orphanSince[key] = now
			}
		} else if parent != nil {
			delete(c.orphanSince, key)
		}
		switch {
		case !active && rtErr == nil && !running && c.unreachable >= 2:
			if err := c.activate(key); err != nil {
				c.logOnce("state/"+key, "activating checkpoint %s: %v", key, err)
			} else {
				c.logOnce("state/"+key, "checkpoint %s activated: its parent is not running here and the API cannot be reached", key)
			}
		case active && !c.parentSince[key].IsZero() && now.Sub(c.parentSince[key]) >= c.Grace:
			if err := removeFile(c.activePath(key)); err != nil {
				c.logOnce("state/"+key, "deactivating checkpoint %s: %v", key, err)
			} else {
				c.logOnce("state/"+key, "checkpoint %s deactivated: its parent %s/%s has run here Ready for %s", key, parent.Namespace, parent.Name, c.Grace)
			}
		case !c.orphanSince[key].IsZero() && now.Sub(c.orphanSince[key]) >= c.Orphan:
			if err := c.remove(key); err != nil {
				c.logOnce("state/"+key, "removing checkpoint %s: %v", key, err)
			} else {
				c.logOnce("state/"+key, "checkpoint %s removed: the API has not known its parent for %s", key, c.Orphan)
				delete(c.orphanSince, key)
			}
		}
	}
}

// checkpointKey names a pod's checkpoint by what owns it: namespace~kind~name, or namespace~name for
// a pod no controller owns.
func checkpointKey(p *corev1.Pod) string {
	if ref := metav1.GetControllerOf(p); ref != nil {
		return p.Namespace + "~" + strings.ToLower(ref.Kind) + "~" + ref.Name
	}
	return p.Namespace + "~" + p.Name
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// parentRunning reports whether a pod of the checkpoint's parent, not a checkpoint, runs here.
func parentRunning(cp *corev1.Pod, local []LocalPod) bool {
	var want map[string]string
	if err := json.Unmarshal([]byte(cp.Annotations[parentLabelsAnnotation]), &want); err != nil || len(want) == 0 {
		return false
	}
	for _, lp := range local {
		if lp.Namespace != cp.Namespace || lp.Labels[CheckpointLabel] != "" {
			continue
		}
		match := true
		for k, v := range want {
			if lp.Labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func (c *Checkpointer) inactivePath(key string) string {
	return filepath.Join(c.CheckpointDir, key+".yaml")
}

func (c *Checkpointer) activePath(key string) string {
	return filepath.Join(c.StaticPodDir, checkpointFilePrefix+key+".yaml")
}

// dataDir holds a checkpoint's secrets and config maps.
func (c *Checkpointer) dataDir(key string) string {
	return filepath.Join(c.CheckpointDir, key+".data")
}

// checkpoints are the keys of the saved checkpoints, sorted.
func (c *Checkpointer) checkpoints() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(c.CheckpointDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, m := range matches {
		keys = append(keys, strings.TrimSuffix(filepath.Base(m), ".yaml"))
	}
	slices.Sort(keys)
	return keys, nil
}

func (c *Checkpointer) load(key string) (*corev1.Pod, error) {
	b, err := os.ReadFile(c.inactivePath(key))
	if err != nil {
		return nil, err
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// save writes the checkpoint of parent p: its data first, then the pod that refers to it. An
// active checkpoint is updated in place, so the kubelet runs the parent's latest Ready revision.
func (c *Checkpointer) save(ctx context.Context, key string, p *corev1.Pod) error {
	files := map[string][]byte{}
	cp, err := CheckpointPod(p, key, c.dataDir(key), func(kind, name string) (map[string][]byte, error) {
		switch kind {
		case "Secret":
			s, err := c.Client.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return s.Data, nil
		default:
			cm, err := c.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			out := maps.Clone(cm.BinaryData)
			if out == nil {
				out = map[string][]byte{}
			}
			for k, v := range cm.Data {
				out[k] = []byte(v)
			}
			return out, nil
		}
	}, files)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(cp)
	if err != nil {
		return err
	}
	for rel, b := range files {
		p := filepath.Join(c.dataDir(key), rel)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := writeFile(p, b); err != nil {
			return err
		}
	}
	if old, err := os.ReadFile(c.inactivePath(key)); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := writeFile(c.inactivePath(key), data); err != nil {
		return err
	}
	if fileExists(c.activePath(key)) {
		return writeFile(c.activePath(key), data)
	}
	return nil
}

func (c *Checkpointer) activate(key string) error {
	data, err := os.ReadFile(c.inactivePath(key))
	if err != nil {
		return err
	}
	return writeFile(c.activePath(key), data)
}

// remove removes a checkpoint, active or not, and its secrets and config maps.
func (c *Checkpointer) remove(key string) error {
	return errors.Join(removeFile(c.activePath(key)), removeFile(c.inactivePath(key)), os.RemoveAll(c.dataDir(key)))
}

// CheckpointPod turns parent p into its checkpoint: a static pod named after the checkpoint, labelled
// CheckpointLabel, without service account, owner or scheduling constraints, its secret and config
// map volumes as host paths under dataDir (their files, relative to dataDir, are added to files, read
// with get), and its environment's downward-API addresses filled in from p's status. A pod that takes
// environment variables from secrets or config maps is refused: they would have to be written into
// the static pod.
func CheckpointPod(p *corev1.Pod, key, dataDir string, get func(kind, name string) (map[string][]byte, error), files map[string][]byte) (*corev1.Pod, error) {
	owner := p.Name
	if ref := metav1.GetControllerOf(p); ref != nil {
		owner = ref.Name
	}
	parentLabels := map[string]string{}
	for k, v := range p.Labels {
		if !slices.Contains(volatileLabels, k) {
			parentLabels[k] = v
		}
	}
	pl, err := json.Marshal(parentLabels)
	if err != nil {
		return nil, err
	}
	spec := *p.Spec.DeepCopy()
	spec.NodeName = ""
	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	no := false
	spec.AutomountServiceAccountToken = &no
	spec.NodeSelector = nil
	spec.Affinity = nil
	spec.SchedulerName = ""
	spec.ImagePullSecrets = nil

	dropped := map[string]bool{}
	var volumes []corev1.Volume
	for _, v := range spec.Volumes {
		var kind, name string
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			kind, name, items = "Secret", v.Secret.SecretName, v.Secret.Items
		case v.ConfigMap != nil:
			kind, name, items = "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items
		case v.Projected != nil:
			// Service account tokens (the only projection a static pod could not have) are dropped
			// with their mounts; a checkpoint talks to no API as its parent's service account.
			dropped[v.Name] = true
			continue
		default:
			volumes = append(volumes, v)
			continue
		}
		data, err := get(kind, name)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s of volume %s: %w", strings.ToLower(kind), p.Namespace, name, v.Name, err)
		}
		for k, b := range data {
			target := k
			if len(items) > 0 {
				target = ""
				for _, it := range items {
					if it.Key == k {
						target = it.Path
					}
				}
				if target == "" {
					continue
				}
			}
			files[filepath.Join(v.Name, target)] = b
		}
		dirType := corev1.HostPathDirectory
		volumes = append(volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(dataDir, v.Name), Type: &dirType}}})
	}
	spec.Volumes = volumes

	fill := func(cs []corev1.Container) error {
		for i := range cs {
			ctr := &cs[i]
			var mounts []corev1.VolumeMount
			for _, m := range ctr.VolumeMounts {
				if !dropped[m.Name] {
					mounts = append(mounts, m)
				}
			}
			ctr.VolumeMounts = mounts
			if len(ctr.EnvFrom) > 0 {
				return fmt.Errorf("container %s takes its environment from config maps or secrets", ctr.Name)
			}
			for j := range ctr.Env {
				e := &ctr.Env[j]
				if e.ValueFrom == nil {
					continue
				}
				switch {
				case e.ValueFrom.FieldRef != nil:
					switch e.ValueFrom.FieldRef.FieldPath {
					case "status.hostIP":
						e.Value, e.ValueFrom = p.Status.HostIP, nil
					case "status.podIP":
						e.Value, e.ValueFrom = p.Status.PodIP, nil
					case "spec.nodeName":
						e.Value, e.ValueFrom = p.Spec.NodeName, nil
					}
				case e.ValueFrom.SecretKeyRef != nil || e.ValueFrom.ConfigMapKeyRef != nil:
					return fmt.Errorf("container %s takes %s from a config map or secret", ctr.Name, e.Name)
				}
			}
		}
		return nil
	}
	if err := fill(spec.InitContainers); err != nil {
		return nil, err
	}
	if err := fill(spec.Containers); err != nil {
		return nil, err
	}
	annotations := map[string]string{}
	for k, v := range p.Annotations {
		if k != generator.CheckpointAnnotation && !strings.HasPrefix(k, "kubernetes.io/") && !strings.HasPrefix(k, "kubectl.kubernetes.io/") {
			annotations[k] = v
		}
	}
	annotations[parentLabelsAnnotation] = string(pl)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        owner + "-checkpoint",
			Namespace:   p.Namespace,
			Labels:      map[string]string{CheckpointLabel: labelValue(owner)},
			Annotations: annotations,
		},
		Spec: spec,
	}, nil
}

// labelValue shortens s to a valid label value.
func labelValue(s string) string {
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-_.")
	}
	return s
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// writeFile writes a checkpoint's file, readable by root only, atomically: the kubelet never sees a
// part of a static pod.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return outdir.WriteFileAtomic(path, data, 0o600)
}
