// Command terraform-provider-liftoff is liftoff's Terraform provider plugin. Terraform starts it;
// run it with -debug to attach a debugger and print a TF_REATTACH_PROVIDERS value.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/provider"
)

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()
	err := providerserver.Serve(context.Background(), provider.New(versions.Liftoff), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
