package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// mount maps a path inside a container to the real path on this host that backs it.
type mount struct {
	container string
	host      string
}

// processSpec turns a container into the command line of its real program: the container's
// command and arguments ($(VAR) expanded from its environment) with every path under a volume
// mount rewritten to the directory or file inside the machine's root that backs it.
func (w *podWorker) processSpec(ctx context.Context, c *container) (proc.Spec, error) {
	k := w.pm.k
	p := w.pod()
	mounts, err := w.mounts(ctx, c.spec)
	if err != nil {
		return proc.Spec{}, err
	}
	env, err := w.env(c.spec, p)
	if err != nil {
		return proc.Spec{}, err
	}
	values := map[string]string{}
	for _, e := range env {
		values[e.Name] = e.Value
	}
	var args []string
	if len(c.spec.Command) > 1 {
		args = append(args, c.spec.Command[1:]...)
	}
	args = append(args, c.spec.Args...)
	for i, a := range args {
		a = rewritePaths(expandVars(a, values), mounts)
		if a, err = w.rewriteConfigFile(a, mounts); err != nil {
			return proc.Spec{}, err
		}
		args[i] = a
	}
	environ := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + k.name,
		"HOME=/root",
	}
	for _, e := range env {
		environ = append(environ, e.Name+"="+rewritePaths(e.Value, mounts))
	}
	dir := k.host(w.podDir())
	if c.spec.WorkingDir != "" {
		dir = rewritePaths(c.spec.WorkingDir, mounts)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return proc.Spec{}, err
	}
	c.mu.Lock()
	program := c.program
	c.mu.Unlock()
	// A host-network pod sees the node's host name; any other pod its own.
	hostname := k.name
	if !p.Spec.HostNetwork {
		hostname = p.Name
		if p.Spec.Hostname != "" {
			hostname = p.Spec.Hostname
		}
	}
	return proc.Spec{
		Hostname: hostname,
		Name:     k.name + "/" + p.Namespace + "/" + p.Name + "/" + c.spec.Name,
		Path:     program,
		Args:     args,
		Env:      environ,
		Dir:      dir,
		Marker:   k.m.Marker,
	}, nil
}

// rewritePaths rewrites every absolute path in s (alone, or after '=', ',' or ':') that lies under
// a mount.
func rewritePaths(s string, mounts []mount) string {
	var b strings.Builder
	start := 0
	flush := func(end int) {
		tok := s[start:end]
		b.WriteString(mapPath(tok, mounts))
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ',', ':', ' ':
			flush(i)
			b.WriteByte(s[i])
			start = i + 1
		}
	}
	flush(len(s))
	return b.String()
}

func mapPath(tok string, mounts []mount) string {
	if !strings.HasPrefix(tok, "/") || strings.HasPrefix(tok, "//") {
		return tok
	}
	for _, m := range mounts {
		if tok == m.container {
			return m.host
		}
		if strings.HasPrefix(tok, m.container+"/") {
			return m.host + tok[len(m.container):]
		}
	}
	return tok
}

// rewriteConfigFile handles an argument naming a configuration file that itself names paths under
// the container's mounts: the program gets a copy with those paths rewritten too.
func (w *podWorker) rewriteConfigFile(arg string, mounts []mount) (string, error) {
	name, file, ok := strings.Cut(arg, "=")
	if !ok {
		file, name = arg, ""
	}
	root := w.pm.k.m.Root + string(filepath.Separator)
	if !strings.HasPrefix(file, root) {
		return arg, nil
	}
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 256<<10 {
		return arg, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return arg, nil
	}
	lines := strings.Split(string(data), "\n")
	changed := false
	for i, l := range lines {
		// Only paths that start a YAML value or a list item are rewritten, never parts of
		// base64 data.
		for _, sep := range []string{": ", "- ", ":\t", "\""} {
			if j := strings.Index(l, sep+"/"); j >= 0 {
				head, tail := l[:j+len(sep)], l[j+len(sep):]
				end := strings.IndexAny(tail, "\" \t")
				if end < 0 {
					end = len(tail)
				}
				if mapped := mapPath(tail[:end], mounts); mapped != tail[:end] {
					lines[i] = head + mapped + tail[end:]
					changed = true
				}
				break
			}
		}
	}
	if !changed {
		return arg, nil
	}
	sum := sha256.Sum256(data)
	dst := filepath.Join(w.pm.k.host(w.podDir()), "rewritten", hex.EncodeToString(sum[:8])+"-"+filepath.Base(file))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		return "", err
	}
	if name == "" {
		return dst, nil
	}
	return name + "=" + dst, nil
}

// expandVars expands $(VAR) references as the kubelet does; $$ escapes a dollar and unknown
// references stay as written.
func expandVars(s string, values map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := values[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// env resolves a container's environment: values, and fields of the pod (fieldRef).
func (w *podWorker) env(c corev1.Container, p *corev1.Pod) ([]corev1.EnvVar, error) {
	if len(c.EnvFrom) > 0 {
		return nil, errors.New("envFrom is not supported by the liftoff harness")
	}
	w.mu.Lock()
	podIP := w.podIP
	w.mu.Unlock()
	values := map[string]string{}
	var out []corev1.EnvVar
	for _, e := range c.Env {
		v := expandVars(e.Value, values)
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("env %s: only fieldRef sources are supported by the liftoff harness", e.Name)
			}
			var err error
			if v, err = w.field(e.ValueFrom.FieldRef.FieldPath, p, podIP); err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		values[e.Name] = v
		out = append(out, corev1.EnvVar{Name: e.Name, Value: v})
	}
	return out, nil
}

func (w *podWorker) field(fieldPath string, p *corev1.Pod, podIP string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return w.pm.k.flags.NodeIP, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	}
	return "", fmt.Errorf("field %s is not supported by the liftoff harness", fieldPath)
}

// mounts materialises the volumes a container mounts and returns where each mount path is on the
// host, longest mount path first.
func (w *podWorker) mounts(ctx context.Context, c corev1.Container) ([]mount, error) {
	p := w.pod()
	volumes := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		volumes[v.Name] = v
	}
	var out []mount
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %s names no volume of the pod", vm.Name)
		}
		host, err := w.volume(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, filepath.FromSlash(vm.SubPath))
		}
		out = append(out, mount{container: path.Clean(vm.MountPath), host: host})
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].container) > len(out[j].container) })
	return out, nil
}

// volume returns the host path that backs a volume, creating it when its type says so.
func (w *podWorker) volume(ctx context.Context, v corev1.Volume) (string, error) {
	k := w.pm.k
	dir := func(kind string) (string, error) {
		d := k.host(path.Join(w.podDir(), "volumes", kind, v.Name))
		return d, os.MkdirAll(d, 0o755)
	}
	switch {
	case v.HostPath != nil:
		host := k.host(v.HostPath.Path)
		t := corev1.HostPathUnset
		if v.HostPath.Type != nil {
			t = *v.HostPath.Type
		}
		fi, err := os.Stat(host)
		switch t {
		case corev1.HostPathDirectoryOrCreate:
			if err != nil {
				return host, os.MkdirAll(host, 0o755)
			}
		case corev1.HostPathFileOrCreate:
			if err != nil {
				if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
					return "", err
				}
				f, err := os.OpenFile(host, os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					return "", err
				}
				return host, f.Close()
			}
		case corev1.HostPathDirectory:
			if err != nil || !fi.IsDir() {
				return "", fmt.Errorf("hostPath %s is not a directory on the machine", v.HostPath.Path)
			}
		case corev1.HostPathFile:
			if err != nil || !fi.Mode().IsRegular() {
				return "", fmt.Errorf("hostPath %s is not a file on the machine", v.HostPath.Path)
			}
		case corev1.HostPathUnset:
		default:
			if err != nil {
				return "", fmt.Errorf("hostPath %s does not exist on the machine", v.HostPath.Path)
			}
		}
		return host, nil
	case v.EmptyDir != nil:
		return dir("kubernetes.io~empty-dir")
	case v.ConfigMap != nil, v.Secret != nil, v.Projected != nil, v.DownwardAPI != nil:
		d, err := dir("kubernetes.io~projected")
		if err != nil {
			return "", err
		}
		return d, w.writeVolume(ctx, v, d)
	}
	return "", fmt.Errorf("this volume type is not supported by the liftoff harness")
}

// writeVolume writes the files of a configMap, secret, downwardAPI or projected volume, reading
// objects through the API with the node's own credentials (the Node authorizer lets a node read
// what its pods reference).
func (w *podWorker) writeVolume(ctx context.Context, v corev1.Volume, dir string) error {
	client := w.pm.k.apiClient()
	if client == nil {
		return errors.New("the API is not reachable yet")
	}
	p := w.pod()
	files := map[string][]byte{}
	put := func(data map[string][]byte, items []corev1.KeyToPath) {
		if len(items) == 0 {
			for key, val := range data {
				files[key] = val
			}
			return
		}
		for _, it := range items {
			if val, ok := data[it.Key]; ok {
				files[it.Path] = val
			}
		}
	}
	configMap := func(name string, items []corev1.KeyToPath) error {
		cm, err := client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		data := map[string][]byte{}
		for key, val := range cm.Data {
			data[key] = []byte(val)
		}
		for key, val := range cm.BinaryData {
			data[key] = val
		}
		put(data, items)
		return nil
	}
	secret := func(name string, items []corev1.KeyToPath) error {
		s, err := client.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		put(s.Data, items)
		return nil
	}
	downward := func(items []corev1.DownwardAPIVolumeFile) error {
		for _, it := range items {
			if it.FieldRef == nil {
				return fmt.Errorf("downwardAPI %s: only fieldRef items are supported by the liftoff harness", it.Path)
			}
			var val string
			switch it.FieldRef.FieldPath {
			case "metadata.labels":
				val = formatMap(p.Labels)
			case "metadata.annotations":
				val = formatMap(p.Annotations)
			default:
				var err error
				if val, err = w.field(it.FieldRef.FieldPath, p, ""); err != nil {
					return err
				}
			}
			files[it.Path] = []byte(val)
		}
		return nil
	}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = configMap(v.ConfigMap.Name, v.ConfigMap.Items)
	case v.Secret != nil:
		err = secret(v.Secret.SecretName, v.Secret.Items)
	case v.DownwardAPI != nil:
		err = downward(v.DownwardAPI.Items)
	case v.Projected != nil:
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				err = configMap(src.ConfigMap.Name, src.ConfigMap.Items)
			case src.Secret != nil:
				err = secret(src.Secret.Name, src.Secret.Items)
			case src.DownwardAPI != nil:
				err = downward(src.DownwardAPI.Items)
			case src.ServiceAccountToken != nil:
				expiry := int64(3607)
				if src.ServiceAccountToken.ExpirationSeconds != nil {
					expiry = *src.ServiceAccountToken.ExpirationSeconds
				}
				var aud []string
				if src.ServiceAccountToken.Audience != "" {
					aud = []string{src.ServiceAccountToken.Audience}
				}
				var tr *authenticationv1.TokenRequest
				tr, err = client.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, p.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
					Spec: authenticationv1.TokenRequestSpec{
						Audiences:         aud,
						ExpirationSeconds: ptr.To(expiry),
						BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
					},
				}, metav1.CreateOptions{})
				if err == nil {
					files[src.ServiceAccountToken.Path] = []byte(tr.Status.Token)
				}
			default:
				err = errors.New("this projected source is not supported by the liftoff harness")
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	for name, data := range files {
		f := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}
