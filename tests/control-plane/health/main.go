// Command health reads Kubernetes objects as JSON on stdin (one object, or a List) and prints,
// per object, the health the GitOps tools would report, one line each: `name<TAB>status<TAB>message`.
//
//	health kstatus          what kstatus (sigs.k8s.io/cli-utils) computes: Flux's `wait`,
//	                        `kubectl apply --prune` tooling, cli-utils' poller
//	health argocd FILE.lua  what an Argo CD resource health script returns, run in gopher-lua
//	                        (the Lua runtime Argo CD embeds) with only the libraries Argo CD
//	                        opens for them (package, base, table: no string, no math), and the
//	                        health codes Argo CD accepts
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: health kstatus | health argocd FILE.lua")
	}
	objects, err := read(os.Stdin)
	if err != nil {
		fail(err.Error())
	}
	for _, obj := range objects {
		var state, message string
		switch os.Args[1] {
		case "kstatus":
			res, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				fail(err.Error())
			}
			state, message = string(res.Status), res.Message
		case "argocd":
			if len(os.Args) != 3 {
				fail("usage: health argocd FILE.lua")
			}
			state, message, err = argocd(os.Args[2], obj)
			if err != nil {
				fail(err.Error())
			}
		default:
			fail("unknown mode " + os.Args[1])
		}
		name, _, _ := unstructured.NestedString(obj, "metadata", "name")
		fmt.Printf("%s\t%s\t%s\n", name, state, strings.ReplaceAll(message, "\n", " "))
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "health:", message)
	os.Exit(2)
}

// read takes one object or a List of them.
func read(r io.Reader) ([]map[string]interface{}, error) {
	var obj map[string]interface{}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	obj = normalize(obj).(map[string]interface{})
	items, isList := obj["items"].([]interface{})
	if !isList {
		return []map[string]interface{}{obj}, nil
	}
	out := make([]map[string]interface{}, 0, len(items))
	for _, item := range items {
		if m, ok := item.(map[string]interface{}); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// normalize turns json.Number into int64 or float64, as unstructured objects hold them.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case []interface{}:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// argocd runs a health script the way Argo CD does: a fresh state with only the package, base
// and table libraries, the object as the global `obj`, the chunk's returned table read for
// `status` (one of Argo CD's health codes) and `message`.
func argocd(script string, obj map[string]interface{}) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoFile(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("%s returned no table", script)
	}
	state := lua.LVAsString(ret.RawGetString("status"))
	switch state {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("%s returned %q, not a health code Argo CD accepts", script, state)
	}
	message := lua.LVAsString(ret.RawGetString("message"))
	return state, message, nil
}

func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch t := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(t)
	case string:
		return lua.LString(t)
	case int64:
		return lua.LNumber(t)
	case float64:
		return lua.LNumber(t)
	case []interface{}:
		tbl := l.NewTable()
		for _, e := range t {
			tbl.Append(toLua(l, e))
		}
		return tbl
	case map[string]interface{}:
		tbl := l.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(l, e))
		}
		return tbl
	}
	return lua.LString(fmt.Sprint(v))
}
