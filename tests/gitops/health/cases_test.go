package health

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The repository's Argo CD customizations, relative to this package.
var customizations = filepath.Join("..", "..", "..", "docs", "argocd", "resource_customizations")

// healthTest is Argo CD's health_test.yaml format (util/lua/health_test.go):
// tests: [{healthStatus: {status, message}, inputPath}].
type healthTest struct {
	Tests []struct {
		HealthStatus Status `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

type testCase struct {
	kind     string
	file     string // testdata/<name>.yaml
	path     string
	expected Status
	yaml     []byte
}

func kinds(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(customizations, Group))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, entry := range entries {
		if entry.IsDir() {
			kinds = append(kinds, entry.Name())
		}
	}
	sort.Strings(kinds)
	return kinds
}

func cases(t *testing.T) []testCase {
	t.Helper()
	var all []testCase
	for _, kind := range kinds(t) {
		dir := filepath.Join(customizations, Group, kind)
		text, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var suite healthTest
		if err := yaml.UnmarshalStrict(text, &suite); err != nil {
			t.Fatalf("%s/health_test.yaml: %v", kind, err)
		}
		for _, test := range suite.Tests {
			path := filepath.Join(dir, test.InputPath)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, testCase{kind: kind, file: test.InputPath, path: path, expected: test.HealthStatus, yaml: data})
		}
	}
	if len(all) == 0 {
		t.Fatal("no health_test.yaml cases found")
	}
	return all
}

// asArgoTest decodes a testdata file as Argo CD's own test suite does
// (sigs.k8s.io/yaml into map[string]any: numbers are float64).
func asArgoTest(t *testing.T, c testCase) map[string]any {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal(c.yaml, &obj); err != nil {
		t.Fatalf("%s: %v", c.path, err)
	}
	return obj
}

// asLive decodes a testdata file as objects arrive from the API server (Argo CD's
// cluster cache, Flux, kubectl): an unstructured.Unstructured whose integers are int64.
func asLive(t *testing.T, c testCase) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON(c.yaml)
	if err != nil {
		t.Fatalf("%s: %v", c.path, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		t.Fatalf("%s: %v", c.path, err)
	}
	return obj
}
