// Command argohealth prints the Argo CD health of every object of a Kubernetes List read
// on stdin (as `kubectl get ... -o json` prints it), one line each:
//
//	<kind>/<namespace>/<name> <health> <message>
//
// computed by running docs/argocd/resource_customizations/patchfleet.io/<Kind>/health.lua
// in gopher-lua exactly as Argo CD runs an argocd-cm health override (see
// health.RunLua). --customizations names the resource_customizations directory.
// With --expect HEALTH it exits 1 when any object has another health, or when the list
// is empty. An object of a kind without a script is an error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"patchfleet.io/tests/gitops/health"
)

func main() {
	customizations := flag.String("customizations", "docs/argocd/resource_customizations",
		"the resource_customizations directory holding patchfleet.io/<Kind>/health.lua")
	expect := flag.String("expect", "", "exit 1 unless every object has this health")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *customizations, *expect))
}

func run(in io.Reader, out io.Writer, customizations, expect string) int {
	scripts, err := health.Scripts(customizations)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argohealth:", err)
		return 2
	}
	data, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argohealth:", err)
		return 2
	}
	objects, err := health.DecodeList(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argohealth:", err)
		return 2
	}
	code := 0
	for i := range objects {
		obj := &objects[i]
		script, ok := scripts[obj.GetKind()]
		if !ok || obj.GroupVersionKind().Group != health.Group {
			fmt.Fprintf(os.Stderr, "argohealth: %s: no health.lua for %s\n", health.ID(obj), obj.GroupVersionKind())
			return 2
		}
		result, err := health.RunLua(obj.Object, script, health.ArgoCDConfigMap)
		if err != nil {
			fmt.Fprintf(os.Stderr, "argohealth: %s: %v\n", health.ID(obj), err)
			return 2
		}
		fmt.Fprintf(out, "%s %s %s\n", health.ID(obj), result.Status, health.OneLine(result.Message))
		if expect != "" && result.Status != expect {
			code = 1
		}
	}
	if expect != "" && len(objects) == 0 {
		fmt.Fprintln(os.Stderr, "argohealth: the list is empty: nothing to check")
		code = 1
	}
	return code
}
