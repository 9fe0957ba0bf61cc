package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"sort"
	"strings"
)

// Kind says what an asset is; index.json lists it. Platforms add kinds of their own.
type Kind string

// The generator's asset kinds.
const (
	KindIgnition       Kind = "ignition"
	KindCertificate    Kind = "certificate"
	KindPrivateKey     Kind = "private-key"
	KindPublicKey      Kind = "public-key"
	KindKubeconfig     Kind = "kubeconfig"
	KindManifest       Kind = "manifest"
	KindStaticPod      Kind = "static-pod"
	KindBootstrapToken Kind = "bootstrap-token"
	KindEncryptionKey  Kind = "encryption-key"
	// KindRoleIgnition is a role's shared Ignition config, which machines of the role merge from
	// where their platform serves it (Options.RoleConfigURL).
	KindRoleIgnition Kind = "role-ignition"
)

// Asset is one rendered file: its path under the output directory, what it is, what it belongs to,
// its file mode and its bytes. An asset belongs to one machine (Node), to one worker pool (Pool), or
// to the whole cluster (neither); Role is the machine's or pool's role.
type Asset struct {
	Path string
	Kind Kind
	Node string
	Pool string
	Role string
	Mode fs.FileMode
	Data []byte
}

// KeyMaterial reports whether the asset is key material that a later render reuses when given it
// (Options.Existing): a certificate, key, bootstrap token or encryption key under pki/. Files made
// from key material, like the kubeconfigs and the bootstrap tokens' Secret manifest, are made again.
func (a *Asset) KeyMaterial() bool {
	switch a.Kind {
	case KindCertificate, KindPrivateKey, KindPublicKey, KindBootstrapToken, KindEncryptionKey:
		return strings.HasPrefix(a.Path, OutPKIDir+"/")
	}
	return false
}

// Sensitive reports whether the asset holds secret material (private keys, tokens, credentials).
func (a *Asset) Sensitive() bool { return a.Mode&0o077 == 0 }

// Assets is a set of rendered files, kept sorted by path.
type Assets struct {
	Cluster string
	Files   []Asset
}

// Add appends assets.
func (as *Assets) Add(a ...Asset) { as.Files = append(as.Files, a...) }

// Sort orders files by path so output and index are stable.
func (as *Assets) Sort() {
	sort.Slice(as.Files, func(i, j int) bool { return as.Files[i].Path < as.Files[j].Path })
}

// Get returns the asset at path, or nil.
func (as *Assets) Get(path string) *Asset {
	for i := range as.Files {
		if as.Files[i].Path == path {
			return &as.Files[i]
		}
	}
	return nil
}

// IndexPath is the file that lists every other file of an output directory.
const IndexPath = "index.json"

// Index is DIR/index.json.
type Index struct {
	Cluster string       `json:"cluster"`
	Assets  []IndexEntry `json:"assets"`
}

// IndexEntry describes one asset.
type IndexEntry struct {
	Path   string `json:"path"`
	Kind   Kind   `json:"kind"`
	Node   string `json:"node,omitempty"`
	Pool   string `json:"pool,omitempty"`
	Role   string `json:"role,omitempty"`
	SHA256 string `json:"sha256"`
}

// Index builds the index of the assets.
func (as *Assets) Index() Index {
	idx := Index{Cluster: as.Cluster, Assets: make([]IndexEntry, 0, len(as.Files))}
	for _, a := range as.Files {
		sum := sha256.Sum256(a.Data)
		idx.Assets = append(idx.Assets, IndexEntry{Path: a.Path, Kind: a.Kind, Node: a.Node, Pool: a.Pool, Role: a.Role, SHA256: hex.EncodeToString(sum[:])})
	}
	return idx
}

// IndexJSON is the index as written to DIR/index.json.
func (as *Assets) IndexJSON() []byte {
	b, _ := json.MarshalIndent(as.Index(), "", "  ")
	return append(b, '\n')
}
