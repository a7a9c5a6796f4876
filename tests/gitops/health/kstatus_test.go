package health

import (
	"testing"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Where kstatus and Argo CD's health must differ, and why. Each entry is still checked:
// kstatus must give exactly this status, so the list cannot go stale.
var kstatusExceptions = map[string]status.Status{
	// kstatus cannot tell "no controller has looked yet" from "a resource without
	// status": with neither status.observedGeneration nor conditions it says Current.
	// The controller writes status on its first pass, so Flux's wait passes early only
	// in the moment before it; Argo CD (health.lua) waits for a Ready condition.
	"testdata/progressing-no-status.yaml": status.CurrentStatus,
	// kstatus has a status of its own for a deletionTimestamp; Argo CD shows
	// Progressing ("Pending deletion") and never runs health.lua for such an object.
	"testdata/progressing-deleting.yaml": status.TerminatingStatus,
}

// The same testdata through the real kstatus library (what Flux and `kubectl wait`-style
// tooling read): the result agrees with the Argo CD health of health_test.yaml,
// Healthy->Current, Progressing->InProgress, Degraded->Failed (Suspended->InProgress).
func TestKstatusAgreesWithTheArgoCDHealth(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.kind+"/"+c.file, func(t *testing.T) {
			result, err := Kstatus(asLive(t, c))
			if err != nil {
				t.Fatal(err)
			}
			want, ok := kstatusExceptions[c.file]
			if !ok {
				want, ok = ArgoToKstatus[c.expected.Status]
				if !ok {
					t.Fatalf("no kstatus counterpart for Argo CD health %q", c.expected.Status)
				}
			}
			if result.Status != want {
				t.Fatalf("kstatus says %s (%q), Argo CD health is %s (%q); want kstatus %s",
					result.Status, result.Message, c.expected.Status, c.expected.Message, want)
			}
			// Stalled and Reconciling carry the message both tools show.
			if (want == status.FailedStatus || want == status.InProgressStatus) && result.Message != c.expected.Message &&
				c.file != "testdata/progressing-generation.yaml" {
				t.Errorf("kstatus message %q, Argo CD message %q", result.Message, c.expected.Message)
			}
		})
	}
}
