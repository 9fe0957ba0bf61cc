// Command terraform-provider-liftoff is liftoff's Terraform provider plugin. Terraform starts it;
// run it with -debug to attach a debugger and print a TF_REATTACH_PROVIDERS value.
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/provider"
)

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()
	quietFramework()
	err := providerserver.Serve(context.Background(), provider.New(versions.Liftoff), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}

// quietFramework turns off the plugin framework's own trace logs unless a TF_LOG variable asks for
// logs. The framework traces every value it walks, and Terraform drops those lines unless TF_LOG
// is set; for a cluster of 1,000 workers, writing them cost a fifth of the provider's time in
// every plan.
func quietFramework() {
	for _, v := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	os.Setenv("TF_LOG_SDK_FRAMEWORK", "off")
}
