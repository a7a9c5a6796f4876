package health

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Every health_test.yaml case, as Argo CD's TestLuaHealthScript runs it, in both Lua
// environments (argocd-cm overrides and open libs) and with both number decodings
// (float64 from YAML, int64 from the API).
func TestHealthLuaMatchesHealthTestYAML(t *testing.T) {
	scripts, err := Scripts(customizations)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases(t) {
		t.Run(c.kind+"/"+c.file, func(t *testing.T) {
			inputs := map[string]map[string]any{
				"yaml": asArgoTest(t, c),
				"live": asLive(t, c).Object,
			}
			for decoding, obj := range inputs {
				for _, env := range Environments {
					got, err := RunLua(obj, scripts[c.kind], env)
					if err != nil {
						t.Fatalf("%s, %s: %v", env, decoding, err)
					}
					if got != c.expected {
						t.Errorf("%s, %s:\n got  %+v\n want %+v", env, decoding, got, c.expected)
					}
				}
			}
		})
	}
}

// The four kinds share one script body: a fix to one is a fix to all.
func TestTheFourScriptsAreIdentical(t *testing.T) {
	scripts, err := Scripts(customizations)
	if err != nil {
		t.Fatal(err)
	}
	first := ""
	for _, kind := range kinds(t) {
		if first == "" {
			first = kind
			continue
		}
		if scripts[kind] != scripts[first] {
			t.Errorf("%s/health.lua differs from %s/health.lua", kind, first)
		}
	}
}

// Each CRD in crds/ has a health check, and each health check has the states the issue
// asks for: Healthy, Progressing (no status yet, generation not observed, Reconciling)
// and Degraded (Stalled; Ready=False with failures). Every testdata file is used, and
// every object is of the kind its directory names.
func TestEveryKindIsCoveredAndEveryTestdataFileIsUsed(t *testing.T) {
	crds, err := filepath.Glob(filepath.Join("..", "..", "..", "crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs found: %v", err)
	}
	want := map[string]bool{}
	for _, path := range crds {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if crd.Spec.Group == Group {
			want[crd.Spec.Names.Kind] = true
		}
	}
	have := map[string]bool{}
	for _, kind := range kinds(t) {
		have[kind] = true
	}
	for kind := range want {
		if !have[kind] {
			t.Errorf("no health check for %s", kind)
		}
	}
	for kind := range have {
		if !want[kind] {
			t.Errorf("health check for %s, which no CRD defines", kind)
		}
	}

	used := map[string]bool{}
	statuses := map[string]map[string]bool{}
	for _, c := range cases(t) {
		used[c.path] = true
		if statuses[c.kind] == nil {
			statuses[c.kind] = map[string]bool{}
		}
		statuses[c.kind][c.expected.Status] = true
		statuses[c.kind][c.file] = true
		obj := asLive(t, c)
		if obj.GetKind() != c.kind || obj.GroupVersionKind().Group != Group {
			t.Errorf("%s: holds a %s, not a %s.%s", c.path, obj.GroupVersionKind(), c.kind, Group)
		}
		if c.expected.Message == "" {
			t.Errorf("%s: expects no message; every health should say why", c.path)
		}
	}
	for kind, seen := range statuses {
		for _, need := range []string{
			Healthy, Progressing, Degraded,
			"testdata/progressing-no-status.yaml",
			"testdata/progressing-generation.yaml",
			"testdata/progressing-reconciling.yaml",
			"testdata/degraded-stalled.yaml",
			"testdata/degraded-failures.yaml",
		} {
			if !seen[need] {
				t.Errorf("%s: no case for %s", kind, need)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(customizations, Group, "*", "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if !used[file] {
			t.Errorf("%s is not used by any health_test.yaml", file)
		}
	}
}

// The argocd-cm environment really is restricted the way Argo CD's is: a script that
// needs the string library fails there (and only there), and an invalid status becomes
// Unknown. This keeps the emulation honest, and is why health.lua uses only `..`.
func TestTheConfigMapEnvironmentIsRestrictedLikeArgoCDs(t *testing.T) {
	obj := map[string]any{"kind": "PatchGroup"}
	uses := `return {status = "Healthy", message = string.format("%s", obj.kind)}`
	if _, err := RunLua(obj, uses, ArgoCDConfigMap); err == nil || !strings.Contains(err.Error(), "string") {
		t.Errorf("string.format worked in the argocd-cm environment: %v", err)
	}
	if got, err := RunLua(obj, uses, OpenLibs); err != nil || got.Message != "PatchGroup" {
		t.Errorf("string.format with open libs: %+v %v", got, err)
	}
	for _, env := range Environments {
		got, err := RunLua(obj, `return {status = os.time() > 0 and "Healthy" or "Degraded"}`, env)
		if err != nil || got.Status != Healthy {
			t.Errorf("%s: os.time: %+v %v", env, got, err)
		}
		if _, err := RunLua(obj, `os.execute("true") return {status = "Healthy"}`, env); env == ArgoCDConfigMap && err == nil {
			t.Errorf("os.execute worked in the argocd-cm environment")
		}
		got, err = RunLua(obj, `return {status = "Fine"}`, env)
		if err != nil || got != (Status{Status: Unknown, Message: "Lua returned an invalid health status"}) {
			t.Errorf("%s: invalid status: %+v %v", env, got, err)
		}
	}
}
