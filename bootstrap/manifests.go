package bootstrap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/liftoff-k8s/liftoff/generator"
)

// Object is one object of the rendered manifests and where it was written.
type Object struct {
	*unstructured.Unstructured
	// File is the manifest's path in the output directory; Doc its 1-based YAML document number.
	File string
	Doc  int
}

// String names the object as progress and errors show it: "Kind namespace/name" or "Kind name".
func (o Object) String() string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// Where is the object's file and document, for errors.
func (o Object) Where() string {
	return fmt.Sprintf("%s (document %d)", o.File, o.Doc)
}

func (o Object) isNamespace() bool {
	return o.GroupVersionKind().Group == "" && o.GetKind() == "Namespace"
}

func (o Object) isCRD() bool {
	return o.GroupVersionKind().Group == "apiextensions.k8s.io" && o.GetKind() == "CustomResourceDefinition"
}

// Manifests reads the cluster manifests among the assets: every YAML or JSON file directly under
// manifests/ (whatever its kind in the index: the bootstrap token is a manifest too), in the
// lexical order of their paths, each file's documents in the order written. Empty documents and
// List kinds are handled the way kubectl does.
func Manifests(assets *generator.Assets) ([]Object, error) {
	var files []generator.Asset
	for _, a := range assets.Files {
		if path.Dir(a.Path) != generator.OutManifestDir {
			continue
		}
		switch path.Ext(a.Path) {
		case ".yaml", ".yml", ".json":
			files = append(files, a)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var out []Object
	for _, f := range files {
		objs, err := decodeManifest(f.Path, f.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func decodeManifest(file string, data []byte) ([]Object, error) {
	var out []Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s (document %d): %w", file, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(raw, &u.Object); err != nil {
			return nil, fmt.Errorf("%s (document %d): %w", file, doc, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s (document %d): %w", file, doc, err)
			}
			for i := range list.Items {
				item := list.Items[i]
				if err := checkObject(&item); err != nil {
					return nil, fmt.Errorf("%s (document %d, item %d): %w", file, doc, i, err)
				}
				out = append(out, Object{Unstructured: &item, File: file, Doc: doc})
			}
			continue
		}
		if err := checkObject(u); err != nil {
			return nil, fmt.Errorf("%s (document %d): %w", file, doc, err)
		}
		out = append(out, Object{Unstructured: u, File: file, Doc: doc})
	}
}

func checkObject(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "":
		return errors.New("object has no apiVersion")
	case u.GetKind() == "":
		return errors.New("object has no kind")
	case u.GetName() == "":
		if u.GetGenerateName() != "" {
			return fmt.Errorf("%s uses generateName, which cannot be applied idempotently", u.GetKind())
		}
		return fmt.Errorf("%s has no metadata.name", u.GetKind())
	}
	return nil
}

// stripComments drops YAML comment lines, so a document of comments only counts as empty.
func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] == '#' {
			continue
		}
		out = append(out, l)
	}
	return bytes.Join(out, []byte("\n"))
}
