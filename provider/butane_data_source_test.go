package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/liftoff-k8s/liftoff/internal/butane"
)

const butaneBase = `variant: flatcar
version: 1.1.0
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com
`

const butaneMOTD = `variant: flatcar
version: 1.1.0
storage:
  files:
    - path: /etc/motd
      contents:
        inline: hello
`

func butaneConfig(content string, snippets ...string) string {
	quoted := make([]string, len(snippets))
	for i, s := range snippets {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("data \"liftoff_butane\" \"test\" {\n  content  = %q\n  snippets = [%s]\n}\n", content, strings.Join(quoted, ", "))
}

// TestAccButane translates Butane with the real terraform CLI and refuses what Butane would only warn
// about, naming the line.
func TestAccButane(t *testing.T) {
	terraformBinary(t)
	badKey := strings.Replace(butaneMOTD, "      contents:", "      colour: red\n      contents:", 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config: butaneConfig(butaneBase, butaneMOTD),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrWith("data.liftoff_butane.test", "rendered", func(v string) error {
						if err := butane.Check([]byte(v)); err != nil {
							return err
						}
						for _, want := range []string{`"path":"/etc/motd"`, `"name":"core"`, "ssh-ed25519"} {
							if !strings.Contains(v, want) {
								return fmt.Errorf("rendered config lacks %s: %s", want, v)
							}
						}
						return nil
					}),
				),
			},
			{
				Config:      butaneConfig(badKey),
				ExpectError: regexp.MustCompile(`(?s)Invalid Butane config.*with data.liftoff_butane.test.*content\s*=.*line 6, column 7: unused key colour`),
			},
			{
				Config:      butaneConfig(butaneBase, butaneMOTD, badKey),
				ExpectError: regexp.MustCompile(`(?s)Invalid Butane config.*snippets\s*=.*line 6, column 7: unused key colour`),
			},
			{
				Config:      butaneConfig("variant: flatcar\n"),
				ExpectError: regexp.MustCompile(`Invalid Butane config`),
			},
		},
	})
}
