// Command kstatus prints the kstatus of every object of a Kubernetes List read on stdin
// (as `kubectl get ... -o json` prints it), one line each:
//
//	<kind>/<namespace>/<name> <status> <message>
//
// With --expect STATUS (Current, InProgress, Failed, Terminating, NotFound, Unknown) it
// exits 1 when any object has another status, or when the list is empty (nothing was
// checked). It is the same computation Flux's health checks and `kstatus`-based
// appliers make (sigs.k8s.io/cli-utils/pkg/kstatus/status, version pinned in go.mod).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"patchfleet.io/tests/gitops/health"
)

func main() {
	expect := flag.String("expect", "", "exit 1 unless every object has this kstatus")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *expect))
}

func run(in io.Reader, out io.Writer, expect string) int {
	data, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		return 2
	}
	objects, err := health.DecodeList(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		return 2
	}
	code := 0
	for i := range objects {
		result, err := health.Kstatus(&objects[i])
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", health.ID(&objects[i]), err)
			return 2
		}
		fmt.Fprintf(out, "%s %s %s\n", health.ID(&objects[i]), result.Status, health.OneLine(result.Message))
		if expect != "" && string(result.Status) != expect {
			code = 1
		}
	}
	if expect != "" && len(objects) == 0 {
		fmt.Fprintln(os.Stderr, "kstatus: the list is empty: nothing to check")
		code = 1
	}
	return code
}
