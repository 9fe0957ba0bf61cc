package generator

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/spec"
	"github.com/liftoff-k8s/liftoff/templates"
)

// With machine_secrets.server, a machine's private keys and credentials are not in its Ignition
// config: the render packs them per machine under MachineSecretsDir, and `liftoff bootstrap` or
// `liftoff serve-secrets` serves each machine its own pack over HTTPS at first boot.
const (
	// MachineSecretsDir holds <node>.tar, each machine's secrets, and server.json.
	MachineSecretsDir = "machine-secrets"
	// MachineSecretsServerPath describes the server: its address and each machine's.
	MachineSecretsServerPath = MachineSecretsDir + "/server.json"
	// SecretsFetchUnit fetches a machine's secrets before its kubelet and etcd start.
	SecretsFetchUnit = "liftoff-fetch-secrets.service"
	// SecretsPathPrefix is the path under which the server serves a machine's pack: PREFIX<node>.
	SecretsPathPrefix = "/v1/secrets/"
)

// KindMachineSecrets is a machine's pack of secrets, or the server's description.
const KindMachineSecrets Kind = "machine-secrets"

// SecretsServer is what serving machines their secrets needs to know besides the packs.
type SecretsServer struct {
	// Address is HOST:PORT, as machines reach it.
	Address string `json:"address"`
	// Machines maps each machine's name to the only address it is served to.
	Machines map[string]string `json:"machines"`
}

// MachineSecretsPath is the pack of machine's secrets in an output directory.
func MachineSecretsPath(machine string) string { return path.Join(MachineSecretsDir, machine+".tar") }

// secretsFetch is what a machine's config needs to fetch its secrets: the unit and the script.
func secretsFetch(c *spec.Cluster) (map[string]string, error) {
	script, err := templates.FS.ReadFile("butane/liftoff-fetch-secrets.sh")
	if err != nil {
		return nil, err
	}
	unit, err := execute("liftoff-fetch-secrets.service.tmpl", map[string]string{
		"Script": HostSecretsFetchScript, "Server": c.MachineSecrets.Server, "Marker": HostSecretsFetched,
		"CA": path.Join(HostPKIDir, CACert),
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"Name": SecretsFetchUnit, "Unit": unit, "Script": HostSecretsFetchScript, "ScriptText": string(script)}, nil
}

// secretsPack is a tar archive of files, as the machine's fetch unpacks it at /: each file with its
// mode and owner, in path order, with no time, so the same secrets give the same bytes.
func secretsPack(files []hostFile) ([]byte, error) {
	sorted := append([]hostFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, f := range sorted {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: int64(f.Mode),
			Uid: f.Owner, Gid: f.Owner, Size: int64(len(f.Text)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := w.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(f.Text)); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// secretsServerAsset describes the server for the machines of d.
func secretsServerAsset(d *Cluster, machines []Machine) (Asset, error) {
	s := SecretsServer{Address: d.Spec.MachineSecrets.Server, Machines: map[string]string{}}
	for _, m := range machines {
		s.Machines[m.Name] = m.IP
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return Asset{}, err
	}
	return Asset{Path: MachineSecretsServerPath, Kind: KindMachineSecrets, Mode: 0o644, Data: append(data, '\n')}, nil
}
