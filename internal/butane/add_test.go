package butane

import (
	"testing"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
)

func file(t *testing.T, path, text string) igntypes.File {
	t.Helper()
	f, err := File(path, 0o644, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Add gives what Ignition's merge gives, whether the snippet's entries are new or not, and never
// writes to the base's lists, which every machine of a role shares.
func TestAddIsMerge(t *testing.T) {
	base := igntypes.Config{Ignition: igntypes.Ignition{Version: "3.4.0"}}
	base.Storage.Files = make([]igntypes.File, 0, 8)
	base.Storage.Files = append(base.Storage.Files, file(t, "/etc/a", "a"))
	for _, tt := range []struct {
		name string
		add  igntypes.Config
	}{
		{"new file", igntypes.Config{Storage: igntypes.Storage{Files: []igntypes.File{file(t, "/etc/b", "b")}}}},
		{"same path", igntypes.Config{Storage: igntypes.Storage{Files: []igntypes.File{file(t, "/etc/a", "other")}}}},
		{"user", igntypes.Config{Passwd: igntypes.Passwd{Users: []igntypes.PasswdUser{{Name: "core"}}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := Marshal(Merge(base, tt.add))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(Add(base, tt.add))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("Add gives\n%s\nMerge gives\n%s", got, want)
			}
			if len(base.Storage.Files) != 1 || base.Storage.Files[:2][1].Path != "" {
				t.Errorf("Add wrote to the base's files: %+v", base.Storage.Files[:2])
			}
		})
	}
}
