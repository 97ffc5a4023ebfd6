// Command composecheck loads a Compose file with compose-go, the Compose
// specification's reference parser (the one `docker compose` uses): it checks
// the file against the Compose schema, resolves anchors, merges and
// interpolation, and prints the services it found. Variables come from the
// environment.
//
//	go run . ../../docs/deploy/compose/compose.yaml
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: composecheck compose.yaml")
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithOsEnv, cli.WithWorkingDirectory(filepath.Dir(file)), cli.WithResolvedPaths(true))
	if err != nil {
		log.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		log.Fatalf("compose: %v", err)
	}
	names := p.ServiceNames()
	slices.Sort(names)
	for _, name := range names {
		s := p.Services[name]
		for _, v := range s.Volumes {
			if v.Type == "bind" {
				if _, err := os.Stat(v.Source); err != nil {
					log.Fatalf("compose: service %s mounts %s, which does not exist", name, v.Source)
				}
			}
		}
	}
	fmt.Printf("compose: %s is valid: project %s, services %v\n", file, p.Name, names)
}
