package generator

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/spec"
)

// BootstrapTokensDir holds the bootstrap tokens, one file per machine known one by one
// (machines/<name>) and per worker pool (pools/<name>), so that a re-render keeps them.
const BootstrapTokensDir = "pki/bootstrap-tokens"

// LegacyBootstrapTokenPath is where renders before per-machine tokens kept the one token every
// machine shared. A re-render drops it; `liftoff bootstrap` deletes it from the cluster.
const LegacyBootstrapTokenPath = "pki/bootstrap-token"

// BootstrapToken is the token one machine's or one worker pool's kubelet presents on first boot to
// get its client certificate.
type BootstrapToken struct {
	// Owner is who joins with it: "machines/<name>" or "pools/<name>".
	Owner  string
	ID     string
	Secret string
	// Expires is when the apiserver stops accepting it; zero for a worker pool's, which joins
	// machines at any time until `liftoff token rotate` replaces it.
	Expires time.Time
}

// MachineTokenOwner and PoolTokenOwner name the owner of a machine's and a worker pool's token.
func MachineTokenOwner(name string) string { return "machines/" + name }
func PoolTokenOwner(name string) string    { return "pools/" + name }

// Path is the token's file in the output directory.
func (t BootstrapToken) Path() string { return path.Join(BootstrapTokensDir, t.Owner) }

// String is the token as a kubeconfig carries it: "id.secret".
func (t BootstrapToken) String() string { return t.ID + "." + t.Secret }

// ExpiresRFC3339 is the Secret's expiration field, "" for a token that does not expire.
func (t BootstrapToken) ExpiresRFC3339() string {
	if t.Expires.IsZero() {
		return ""
	}
	return t.Expires.UTC().Format(time.RFC3339)
}

// Expired reports whether the apiserver no longer accepts the token at now.
func (t BootstrapToken) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// File is the token's file: "id.secret", then "expires: <RFC 3339>" when it expires.
func (t BootstrapToken) File() []byte {
	s := t.String() + "\n"
	if e := t.ExpiresRFC3339(); e != "" {
		s += "expires: " + e + "\n"
	}
	return []byte(s)
}

var bootstrapTokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// ParseBootstrapToken reads a token file of owner (see File).
func ParseBootstrapToken(owner string, data []byte) (BootstrapToken, error) {
	t := BootstrapToken{Owner: owner}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	tok := strings.TrimSpace(lines[0])
	if !bootstrapTokenRE.MatchString(tok) {
		return t, fmt.Errorf("%s is not a bootstrap token (id.secret)", t.Path())
	}
	t.ID, t.Secret, _ = strings.Cut(tok, ".")
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || strings.TrimSpace(k) != "expires" {
			return t, fmt.Errorf("%s: unexpected line %q (want \"expires: <RFC 3339 time>\")", t.Path(), l)
		}
		e, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return t, fmt.Errorf("%s: %w", t.Path(), err)
		}
		t.Expires = e
	}
	return t, nil
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewBootstrapToken draws a token for owner from rand; expires is zero for one that does not expire.
func NewBootstrapToken(rand io.Reader, owner string, expires time.Time) (BootstrapToken, error) {
	b := make([]byte, 22)
	if _, err := io.ReadFull(rand, b); err != nil {
		return BootstrapToken{}, err
	}
	for i := range b {
		// 256 is not a multiple of 36: reject the tail that would favour the first letters.
		for b[i] >= 252 {
			one := make([]byte, 1)
			if _, err := io.ReadFull(rand, one); err != nil {
				return BootstrapToken{}, err
			}
			b[i] = one[0]
		}
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return BootstrapToken{Owner: owner, ID: string(b[:6]), Secret: string(b[6:]), Expires: expires}, nil
}

// bootstrapTokens returns a token for every machine and worker pool of d, reusing an earlier
// render's except for the owners in rotate. A new machine's token expires ttl after now; a pool's
// never does.
func (k *keyring) bootstrapTokens(d *Cluster, ttl time.Duration, rotate []string) (map[string]BootstrapToken, error) {
	if _, ok, err := k.read(LegacyBootstrapTokenPath); err != nil {
		return nil, err
	} else if ok {
		k.changes = append(k.changes, Change{LegacyBootstrapTokenPath, "removed: every machine and worker pool has a token of its own now, under " +
			BootstrapTokensDir + "/; `liftoff bootstrap` deletes the shared one from the cluster"})
	}
	var owners []string
	pool := map[string]bool{}
	if d.Bootstrap != nil {
		owners = append(owners, MachineTokenOwner(d.Bootstrap.Name))
	}
	for _, ms := range [][]Machine{d.Controllers, d.Workers} {
		for _, m := range ms {
			owners = append(owners, MachineTokenOwner(m.Name))
		}
	}
	for _, p := range d.Pools {
		owners = append(owners, PoolTokenOwner(p.Name))
		pool[PoolTokenOwner(p.Name)] = true
	}
	for _, r := range rotate {
		if !slices.Contains(owners, r) {
			return nil, fmt.Errorf("cannot rotate the bootstrap token of %s: the cluster has no such machine or worker pool", r)
		}
	}
	out := make(map[string]BootstrapToken, len(owners))
	for _, owner := range owners {
		p := path.Join(BootstrapTokensDir, owner)
		data, ok, err := k.read(p)
		if err != nil {
			return nil, err
		}
		reason := "created"
		if ok && slices.Contains(rotate, owner) {
			ok, reason = false, "rotated"
		}
		var t BootstrapToken
		if ok {
			if t, err = ParseBootstrapToken(owner, data); err != nil {
				return nil, fmt.Errorf("existing %w; restore it, or remove it to issue a new token", err)
			}
		} else {
			var expires time.Time
			if !pool[owner] {
				expires = k.now.Add(ttl).Truncate(time.Second)
			}
			if t, err = NewBootstrapToken(k.rand, owner, expires); err != nil {
				return nil, err
			}
			k.changes = append(k.changes, Change{p, reason})
		}
		k.emit(p, KindBootstrapToken, 0o600, t.File())
		out[owner] = t
	}
	return out, nil
}

// acceptedTokens are the tokens the cluster should accept at now, by owner: the unexpired ones.
func acceptedTokens(tokens map[string]BootstrapToken, now time.Time) []BootstrapToken {
	var out []BootstrapToken
	for _, t := range tokens {
		if !t.Expired(now) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out
}

// ReadBootstrapTokens reads every token of an output directory.
func ReadBootstrapTokens(dir fs.FS) ([]BootstrapToken, error) {
	var out []BootstrapToken
	err := fs.WalkDir(dir, BootstrapTokensDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(dir, p)
		if err != nil {
			return err
		}
		t, err := ParseBootstrapToken(strings.TrimPrefix(p, BootstrapTokensDir+"/"), data)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if isNotExist(err) {
		return nil, nil
	}
	return out, err
}

// tokenTTL is the spec's bootstrap token TTL.
func tokenTTL(c *spec.Cluster) (time.Duration, error) {
	return spec.ParseDuration(c.PKI.BootstrapTokenTTL)
}

// TokenOwner is the owner of the bootstrap token of the worker pool or machine called name in c:
// a bare name, or pools/NAME or machines/NAME where a pool and a machine share it.
func TokenOwner(c *spec.Cluster, name string) (string, error) {
	pool := slices.ContainsFunc(c.WorkerPools, func(p spec.WorkerPool) bool { return p.Name == name })
	machine := slices.ContainsFunc(c.Machines(), func(n spec.Node) bool { return n.Name == name })
	switch kind, rest, _ := strings.Cut(name, "/"); {
	case pool && machine:
		return "", fmt.Errorf("%s names both a worker pool and a machine: say pools/%s or machines/%s", name, name, name)
	case pool:
		return PoolTokenOwner(name), nil
	case machine:
		return MachineTokenOwner(name), nil
	case kind == "pools" && slices.ContainsFunc(c.WorkerPools, func(p spec.WorkerPool) bool { return p.Name == rest }):
		return name, nil
	case kind == "machines" && slices.ContainsFunc(c.Machines(), func(n spec.Node) bool { return n.Name == rest }):
		return name, nil
	}
	return "", fmt.Errorf("the cluster has no worker pool or machine named %s", name)
}
