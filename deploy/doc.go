// Package deploy holds no code: it is the home of the tests that check scimbridge's packaging and
// deployment files. They render the Helm chart with Helm's own engine and parse every object into
// the Kubernetes API types, parse the plain Kubernetes manifests the same way, parse and format-
// check the Terraform module, lint the Dockerfile, and build the binary with the Dockerfile's
// flags to run it (version, healthcheck, sync --dry-run on the quickstart, serve).
//
//	go test ./deploy/
package deploy
