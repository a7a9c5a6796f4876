// Package health evaluates patchfleet resources the way the two GitOps tools do:
// Argo CD runs the resource_customizations health.lua scripts in gopher-lua, Flux (and
// `kubectl wait`, kpt, cli-utils appliers) compute kstatus. Both are used by the tests
// (testdata) and by the commands in ../cmd (objects the controller really wrote).
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Group is the API group whose customizations live under
// docs/argocd/resource_customizations/<Group>/<Kind>/.
const Group = "patchfleet.io"

// The health status codes Argo CD accepts from a script (gitops-engine pkg/health).
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Suspended   = "Suspended"
	Missing     = "Missing"
	Unknown     = "Unknown"
)

// Status is Argo CD's HealthStatus as a script returns it: {status = ..., message = ...}.
type Status struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// Environment is the Lua environment a script runs in.
type Environment int

const (
	// ArgoCDConfigMap is how Argo CD runs a health override from argocd-cm
	// (resource.customizations.health.<group>_<kind>) unless
	// resource.customizations.useOpenLibs.<group>_<kind> is "true": no standard
	// library but base, package, table and a reduced os (time and date). In
	// particular there is no `string` library, so `string.format` or `s:sub()` fail.
	ArgoCDConfigMap Environment = iota
	// OpenLibs is how Argo CD runs its built-in scripts and its own health_test.yaml
	// suite (VM{UseOpenLibs: true}): every gopher-lua standard library, plus the above.
	OpenLibs
)

func (e Environment) String() string {
	if e == OpenLibs {
		return "open-libs"
	}
	return "argocd-cm"
}

// Environments lists both, for tests that must hold in each.
var Environments = []Environment{ArgoCDConfigMap, OpenLibs}

// RunLua evaluates a health.lua script against an object, reproducing Argo CD's
// util/lua/lua.go (argoproj/argo-cd, VM.runLua and VM.ExecuteHealthLua; read at commit
// 00101b74db7abc91095df9fb4160ef9ba251cb7b, unchanged in substance in later releases):
//
//   - lua.NewState(lua.Options{SkipOpenLibs: !UseOpenLibs}); then, protected, the
//     package, base and table libraries and Argo CD's "safe" os library (os.time and
//     os.date only), the latter also preloaded so require("os") works;
//   - a 1 second context timeout on the state;
//   - the object (map[string]interface{} of an unstructured.Unstructured) converted to
//     Lua values by decodeValue: bool, float64, int, int32, int64 -> number, string and
//     json.Number -> string, []interface{} -> array table, map -> table, nil -> nil;
//     set as the global `obj`;
//   - l.DoString(script); the top of the stack must be a table, which is encoded with
//     layeh.com/gopher-json and unmarshalled into HealthStatus; a status that is not
//     one of Healthy, Progressing, Degraded, Suspended, Missing, Unknown becomes
//     {Unknown, "Lua returned an invalid health status"}.
func RunLua(obj map[string]any, script string, env Environment) (Status, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: env != OpenLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Status{}, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Status{}, err
	}
	returned := l.Get(-1)
	if returned.Type() != lua.LTTable {
		return Status{}, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return Status{}, err
	}
	var result Status
	if err := json.Unmarshal(encoded, &result); err != nil {
		return Status{}, err
	}
	switch result.Status {
	case Healthy, Progressing, Degraded, Suspended, Missing, Unknown:
		return result, nil
	default:
		return Status{Status: Unknown, Message: "Lua returned an invalid health status"}, nil
	}
}

// toLua converts a decoded Kubernetes object to Lua values, with the same rules as Argo
// CD's decodeValue (see RunLua). Numbers arrive as float64 from sigs.k8s.io/yaml (Argo
// CD's tests) and as int64 from the API (Argo CD's live cache); both become numbers.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		table := l.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	default:
		return lua.LNil
	}
}

// The reduced os library Argo CD gives scripts: os.time() and os.date(), nothing that
// reads files, runs programs or exits. (Written here; Argo CD's own is a copy of
// gopher-lua's with the other functions left out.)
var safeOsFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	},
	"date": func(l *lua.LState) int {
		l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339)))
		return 1
	},
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOsFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

// Scripts reads the health.lua of every kind under a resource_customizations directory,
// as Argo CD lays them out: <dir>/<group>/<kind>/health.lua. Keys are kinds.
func Scripts(customizations string) (map[string]string, error) {
	dir := filepath.Join(customizations, Group)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	scripts := map[string]string{}
	for _, entry := range entries {
		if !entry.IsDir() {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, entry.Name(), "health.lua"))
		if err != nil {
			return nil, err
		}
		scripts[entry.Name()] = string(text)
	}
	if len(scripts) == 0 {
		return nil, fmt.Errorf("no health.lua under %s", dir)
	}
	return scripts, nil
}

// Kstatus computes the kstatus of an object with the real library (what Flux's
// kustomize-controller and helm-controller, `kubectl wait` users and cli-utils appliers
// rely on). The object must hold integers as int64 (as Decode leaves them).
func Kstatus(obj *unstructured.Unstructured) (*status.Result, error) {
	return status.Compute(obj)
}

// ArgoToKstatus is the kstatus result each Argo CD health should come with.
// Suspended has no kstatus counterpart: kstatus reads Ready=False as InProgress.
var ArgoToKstatus = map[string]status.Status{
	Healthy:     status.CurrentStatus,
	Progressing: status.InProgressStatus,
	Degraded:    status.FailedStatus,
	Suspended:   status.InProgressStatus,
}

// DecodeList reads a Kubernetes List (`kubectl get -o json`) or a single object.
func DecodeList(data []byte) ([]unstructured.Unstructured, error) {
	var probe struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("reading the input as JSON: %w", err)
	}
	if !strings.HasSuffix(probe.Kind, "List") {
		var obj unstructured.Unstructured
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		return []unstructured.Unstructured{obj}, nil
	}
	var list unstructured.UnstructuredList
	if err := list.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	items := list.Items
	sort.SliceStable(items, func(i, j int) bool { return ID(&items[i]) < ID(&items[j]) })
	return items, nil
}

// ID names an object as <kind>/<namespace>/<name>; cluster-scoped objects have an empty
// namespace (SystemAccount//customer-a-aws).
func ID(obj *unstructured.Unstructured) string {
	return obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// OneLine keeps a message on one output line.
func OneLine(message string) string {
	return strings.Join(strings.Fields(message), " ")
}
